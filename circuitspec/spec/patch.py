"""A patch that adds nodes and edges to a user's spec file, as a unified diff; the file is only read.

New node items go after the last item of the file's top-level ``nodes:`` list, new edge items
after the last item of ``edges:``, each with the list's own indentation; a list the file does not
have is added at its end. The patched text must load (``spec.loads``, includes resolved from the
file's folder) with the new node ids present, so the diff applies (``patch -p1 < FILE``,
``git apply``) to a spec that loads. Lists written in flow style (``nodes: [...]``) cannot take
new block items: that is an error at the list.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from circuitspec.errors import SpecError
from circuitspec.spec.generalise import NodeDraft
from circuitspec.spec.loader import _read_spec, loads
from circuitspec.spec.writer import EdgeDraft, comment, edge_lines, node_lines

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _top(text: str, file: str) -> dict[str, tuple[ScalarNode, object]]:
    root = yaml.compose(text, Loader=_Loader)
    if not isinstance(root, MappingNode):
        raise SpecError("not a spec: the top level is not a mapping of fields", file=file, line=1, column=1)
    return {k.value: (k, v) for k, v in root.value if isinstance(k, ScalarNode)}


def _insert_at(lines: list[str], key: ScalarNode, value, file: str, what: str) -> tuple[int, str]:
    """(line index to insert before, indentation of the items) for the list under ``key``."""
    if isinstance(value, SequenceNode) and value.flow_style and value.value:
        raise SpecError(
            f"{what}: is a flow-style list ([...]); suggest adds block items", file=file,
            line=value.start_mark.line + 1, column=value.start_mark.column + 1, hint=f"write {what}: as a block list (- item per line)",
        )
    if not isinstance(value, SequenceNode) or not value.value:  # `edges:` or `edges: []`: items right under the key
        if isinstance(value, SequenceNode):
            lines[key.start_mark.line] = lines[key.start_mark.line].replace("[]", "", 1).rstrip()
        return key.start_mark.line + 1, " " * (key.start_mark.column + 2)
    first, last = value.value[0], value.value[-1]
    row = lines[first.start_mark.line]
    dash = row.rfind("-", 0, first.start_mark.column)
    end = last.end_mark.line if last.end_mark.column == 0 else last.end_mark.line + 1
    while end > last.start_mark.line + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end, " " * max(dash, 0)


def patched_text(text: str, file: str, nodes: Sequence[NodeDraft], edges: Sequence[EdgeDraft], notes: Sequence[str] = ()) -> str:
    """``text`` with the new items added (see the module docstring)."""
    lines = text.splitlines()
    top = _top(text, file)
    blocks = []
    for what, items, write in (("nodes", nodes, node_lines), ("edges", edges, edge_lines)):
        if not items:
            continue
        if what in top:
            at, indent = _insert_at(lines, *top[what], file, what)
            body = [line for item in items for line in write(item, indent)]
            blocks.append((at, body))
        else:
            blocks.append((len(lines), ["", f"{what}:", *(line for item in items for line in write(item, "  "))]))
    if blocks and notes:
        first = min(blocks)
        blocks[blocks.index(first)] = (first[0], [*comment(notes, _indent(first[1])), *first[1]])
    for at, body in sorted(blocks, key=lambda b: -b[0]):
        lines[at:at] = body
    return "\n".join(lines) + "\n"


def _indent(body: list[str]) -> str:
    row = next((b for b in body if b.strip()), "")
    return row[: len(row) - len(row.lstrip())]


def unified_patch(path: Path, nodes: Sequence[NodeDraft], edges: Sequence[EdgeDraft], notes: Sequence[str] = ()) -> str:
    """A unified diff (``a/FILE``, ``b/FILE``) that adds ``nodes`` and ``edges`` to the spec at ``path``;
    empty when there is nothing to add. The file is read, never written."""
    text = _read_spec(path)
    if not nodes and not edges:
        return ""
    new = patched_text(text, str(path), nodes, edges, notes)
    h = loads(new, file=str(path), base_dir=path.parent)
    ids = {n.id for n in h.nodes}
    missing = [d.id for d in nodes if d.id not in ids]
    if missing:
        raise SpecError(f"the patched spec lacks the proposed nodes {missing}", file=str(path), hint="a bug in suggest: please report it")
    name = path.as_posix().lstrip("/")
    return "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"))
