"""Reading and writing spec files: YAML with the line and column of every value.

``load(path)`` / ``loads(text)`` return a validated ``Hypothesis`` whose includes are
resolved; every problem (bad YAML, a wrong field, an unknown variable, a missing include)
is a ``SpecError`` carrying the file, line and column, and a "did you mean" hint for
unknown names. ``dumps(hypothesis)`` writes the canonical YAML back.

Includes: ``include: [addition.yaml]`` starts from the nodes and edges of the named files
(paths relative to the including file, which must lie inside the include root: the top-level
spec's folder unless ``include_root`` says otherwise, so a spec cannot read files elsewhere on
the machine); ``override:`` replaces fields of included nodes
(found by their id as written, e.g. ``SA{n}``); the file's own ``nodes`` and ``edges`` are
added. A node id defined twice, an override of a missing node, include cycles and chains
deeper than ``MAX_INCLUDE_DEPTH`` are errors.
The loaded object is flat (``include`` and ``override`` empty), so it dumps to a self-contained file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from circuitspec.errors import SpecError
from circuitspec.spec.expr import TemplateError, _did_you_mean
from circuitspec.spec.schema import Hypothesis, Node, SpecModel, Where, check_node, semantic_problems

MAX_VALUES = 100_000  # values after alias expansion
MAX_NESTING = 40
MAX_FILE_BYTES = 2_000_000
MAX_INCLUDE_DEPTH = 32  # files in one include chain


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader where a bare ``=`` is the string '=' (YAML 1.1 would make it a 'value' tag)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mark_error(message: str, file: str, mark, hint: str | None = None) -> SpecError:
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return SpecError(message, file=file, line=line, column=column, hint=hint)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[tuple, tuple[int, int]]]:
    """YAML text -> (plain data, {path: (line, column)}); only SpecError escapes."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"spec file is too large ({len(text)} characters)", file=file, line=1, column=1)
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise SpecError("the spec file is empty", file=file, line=1, column=1, hint="start with name:, task: and nodes:")
            locs: dict[tuple, tuple[int, int]] = {}
            budget = [0]
            data = _convert(root, (), locs, loader, file, 0, budget)
        finally:
            loader.dispose()
    except SpecError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = err.problem or err.context or "bad YAML"
        hint = "check indentation, colons and quotes near here"
        if "'{'" in what or "'}'" in what:
            hint = "inside [...] or {...} quote text that holds braces: {id: 'SA{n}'}, [ 'SV{n-1}' ]"
        raise _mark_error(f"invalid YAML: {what}", file, mark, hint=hint) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        raise SpecError(f"invalid YAML: {err.reason} (character {err.character!r})", file=file, line=line, column=column) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", file=file, line=1, column=1) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file, line=1, column=1) from None
    return data, locs


def _convert(node, path: tuple, locs: dict, loader: _Loader, file: str, depth: int, budget: list[int]) -> Any:
    if depth > MAX_NESTING:
        raise _mark_error("the YAML is nested too deeply (or an alias refers to itself)", file, node.start_mark)
    budget[0] += 1
    if budget[0] > MAX_VALUES:
        raise _mark_error(f"the YAML expands to more than {MAX_VALUES} values (aliases?)", file, node.start_mark)
    locs.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise _mark_error(f"cannot read value {node.value!r:.40}: {getattr(err, 'problem', err)}", file, node.start_mark) from None
        except Exception as err:  # a type tag on a value it cannot convert (!!timestamp x, !!bool add)
            tag = node.tag.rsplit(":", 1)[-1]
            raise _mark_error(
                f"cannot read value {node.value!r:.40} as {tag}",
                file,
                node.start_mark,
                hint=f"drop the !!{tag} tag or write a valid {tag} ({type(err).__name__})",
            ) from None
    if isinstance(node, SequenceNode):
        return [_convert(item, path + (i,), locs, loader, file, depth + 1, budget) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        try:
            loader.flatten_mapping(node)
        except yaml.YAMLError as err:
            raise _mark_error(f"bad merge key: {getattr(err, 'problem', err)}", file, node.start_mark) from None
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _mark_error("a mapping key must be a plain name", file, key_node.start_mark)
            key = _convert(key_node, path + ("<key>",), locs, loader, file, depth + 1, budget)
            try:
                hash(key)
            except TypeError:
                raise _mark_error("a mapping key must be a plain name", file, key_node.start_mark) from None
            if key in out:
                raise _mark_error(f"key {key!r} appears twice in this mapping", file, key_node.start_mark)
            locs[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, path + (key,), locs, loader, file, depth + 1, budget)
        locs.pop(path + ("<key>",), None)
        return out
    raise _mark_error("unsupported YAML node", file, node.start_mark)


# ----------------------------------------------------------------------------- validation errors


def _data_path(data: Any, loc: tuple) -> tuple:
    """The part of a pydantic error location that exists in the data (drops union tags etc.)."""
    path: list = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and not isinstance(part, bool) and part in cur:
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and not isinstance(part, bool) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
    return tuple(path)


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) and not isinstance(p, bool) else (f".{p}" if out else str(p))
    return out


def _describe(data: Any, path: tuple) -> str:
    """``nodes[3] (SA{n}).at`` : the path, with the node's id where there is one."""
    text = dotted(path)
    if len(path) >= 2 and path[0] in ("nodes", "override") and isinstance(data, dict):
        items = data.get(path[0])
        if isinstance(items, list) and isinstance(path[1], int) and path[1] < len(items) and isinstance(items[path[1]], dict):
            node_id = items[path[1]].get("id")
            if isinstance(node_id, str):
                rest = dotted(path[2:])
                text = dotted(path[:2]) + f" ({node_id})" + ("." + rest if rest else "")
    return text


def _problems(err: ValidationError, data: Any) -> list[tuple[tuple, str, str | None]]:
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(e.get("loc", ()))
        cause = (e.get("ctx") or {}).get("error")
        hint = None
        if isinstance(cause, TemplateError):
            msg, hint, loc = cause.message, cause.hint, loc + cause.subpath
        elif e.get("type") == "missing":
            msg = f"missing field {loc[-1]!r}" if loc else "missing field"
            loc = loc[:-1]
        else:
            msg = e.get("msg", "invalid value")
            if "input" in e and e.get("type") not in ("extra_forbidden",):
                msg += f" (got {e['input']!r:.60})"
        out.append((loc, msg, hint))
    return out


def validation_error(err: ValidationError, data: Any, where: Where) -> SpecError:
    """A pydantic ValidationError as one SpecError at the first problem (others listed below it)."""
    problems = _problems(err, data)
    if not problems:
        return SpecError(str(err), **where.at())
    first_loc, msg, hint = problems[0]
    path = _data_path(data, first_loc)
    label = _describe(data, path)
    text = f"{label}: {msg}" if label else msg
    for loc, m, _ in problems[1:4]:
        p = _data_path(data, loc)
        pos = where.at(*p)
        at = f"{pos['line']}:{pos['column']}: " if pos else ""
        text += f"\n  also {at}{_describe(data, p) or 'top level'}: {m}"
    if len(problems) > 4:
        text += f"\n  ... and {len(problems) - 4} more"
    return SpecError(text, hint=hint, **where.at(*path))


def validate_data(data: Any, where: Where) -> Hypothesis:
    try:
        h = Hypothesis.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, data, where) from None
    _attach(h, where)
    return h


def _attach(h: Hypothesis, where: Where) -> None:
    h._where = where
    for i, node in enumerate(h.nodes):
        node._where = where.sub("nodes", i)
    for i, edge in enumerate(h.edges):
        edge._where = where.sub("edges", i)
    for i, ov in enumerate(h.override):
        ov._where = where.sub("override", i)


# ----------------------------------------------------------------------------- files and includes


def load(path: str | os.PathLike, *, include_root: str | os.PathLike | None = None) -> Hypothesis:
    """Load, validate and flatten a spec file.

    Its includes must lie inside ``include_root`` (default: the file's own folder and below).
    """
    path = Path(path)
    text = _read_spec(path)
    root = _root(include_root, path.parent)
    return _from_text(text, str(path), path.parent, (_resolved(path),), root)


def loads(
    text: str,
    *,
    file: str | None = None,
    base_dir: str | os.PathLike | None = None,
    include_root: str | os.PathLike | None = None,
) -> Hypothesis:
    """Load a spec from text; ``file`` names it in errors, ``base_dir`` resolves its includes,
    which must lie inside ``include_root`` (default: ``base_dir`` and below)."""
    name = file or "<spec>"
    if base_dir is None:
        base_dir = Path(file).parent if file else Path.cwd()
    return _from_text(text, name, Path(base_dir), (), _root(include_root, Path(base_dir)))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop or a name the OS refuses: compare as written
        return path.absolute()


def _root(include_root: str | os.PathLike | None, default: Path) -> Path:
    return _resolved(Path(include_root) if include_root is not None else default)


_NOT_FOUND = "spec file not found"


def _read_spec(path: Path) -> str:
    """The text of a spec file; only regular files, at most MAX_FILE_BYTES (a device or FIFO is
    refused before it is opened, so ``/dev/zero`` or a pipe cannot exhaust memory or block)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SpecError("this is a folder, not a spec file", file=str(path), hint="name a .yaml file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError("not a regular file (a device, pipe or socket)", file=str(path), hint="name a .yaml file")
        if info.st_size > MAX_FILE_BYTES:
            raise SpecError(f"spec file is too large ({info.st_size} bytes, at most {MAX_FILE_BYTES})", file=str(path))
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(_NOT_FOUND, file=str(path), hint="check the path") from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        reason = getattr(err, "strerror", None) or str(err)
        raise SpecError(f"cannot read spec file: {reason}", file=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"spec file is too large (more than {MAX_FILE_BYTES} bytes)", file=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(f"spec file is not UTF-8 text: {err.reason}", file=str(path), line=line, column=column) from None


def _from_text(text: str, file: str, base_dir: Path, stack: tuple[Path, ...], root: Path) -> Hypothesis:
    data, locs = parse_yaml(text, file)
    where = Where(file, locs)
    if not isinstance(data, dict):  # said without echoing the content: it may be any file
        raise SpecError(
            f"not a spec: the top level is {_top_kind(data)}, not a mapping of fields",
            file=file, line=1, column=1, hint="a spec starts with name:, task: and nodes:",
        )  # fmt: skip
    h = validate_data(data, where)
    if h.include:
        h = _merge(h, base_dir, stack, root)
    return h


def _top_kind(data: Any) -> str:
    return "a list" if isinstance(data, list) else "a single value" if data is not None else "empty"


def _shown(inc: str) -> str:
    """An include name for a message: quoted, and shortened when it is long."""
    return repr(inc) if len(inc) <= 60 else repr(inc[:57]) + "..."


def _include_path(inc: str, base_dir: Path, root: Path, stack: tuple[Path, ...], at: dict) -> Path:
    """The resolved path of one include entry, or a SpecError at that entry."""
    shown = _shown(inc)
    if "\x00" in inc:
        raise SpecError(f"include {shown} holds a NUL character", hint="name a .yaml file next to this one", **at)
    if len(stack) >= MAX_INCLUDE_DEPTH:
        raise SpecError(f"includes nest more than {MAX_INCLUDE_DEPTH} files deep", hint="flatten the chain of includes", **at)
    path = _resolved(base_dir / inc)
    if not path.is_relative_to(root):
        raise SpecError(
            f"include {shown} is outside {root}",
            hint="includes stay inside the spec's folder; to allow more, pass include_root (--include-root)",
            **at,
        )
    if path in stack:
        chain = " -> ".join(p.name for p in stack + (path,))
        raise SpecError(f"include cycle: {chain}", **at)
    return path


def _merge(h: Hypothesis, base_dir: Path, stack: tuple[Path, ...], root: Path) -> Hypothesis:
    where = h._where or Where(None)
    nodes: list[Node] = []
    origin: dict[str, str] = {}
    edges = []
    for i, inc in enumerate(h.include):
        at = where.at("include", i)
        path = _include_path(inc, base_dir, root, stack, at)
        try:
            text = _read_spec(path)
        except SpecError as err:
            if err.line is not None:  # not UTF-8: located in the included file
                raise
            if err.message == _NOT_FOUND:
                raise SpecError(f"included spec file not found: {_shown(inc)}", hint=f"looked for {path}", **at) from None
            raise SpecError(f"cannot include {_shown(inc)}: {err.message}", hint=err.hint, **at) from None
        sub = _from_text(text, str(path), path.parent, stack + (path,), root)
        for node in sub.nodes:
            if node.id in origin:
                raise SpecError(
                    f"node {node.id!r} is defined by both {origin[node.id]} and {inc}",
                    hint="include files with distinct node ids, or drop one of them",
                    **at,
                )
            origin[node.id] = inc
            nodes.append(node)
        for edge in sub.edges:
            if edge not in edges:
                edges.append(edge)
    index = {node.id: k for k, node in enumerate(nodes)}
    for j, ov in enumerate(h.override):
        if ov.id not in index:
            raise SpecError(f"override of unknown node {ov.id!r}", hint=_did_you_mean(ov.id, list(index)), **ov.where("id"))
        k = index[ov.id]
        old = nodes[k]
        changes = ov.changes()
        new = old.model_copy(update=changes)
        new._where = old._where
        try:
            check_node(new)
        except TemplateError as err:
            raise SpecError(f"override of {ov.id}: {err.message}", hint=err.hint, **ov.where(*err.subpath)) from None
        nodes[k] = new
    for i, node in enumerate(h.nodes):
        if node.id in index:
            raise SpecError(
                f"node {node.id!r} is already defined in {origin[node.id]}",
                hint=f"to change it, write it under override: (- id: {node.id} ...)",
                **node.where("id"),
            )
        nodes.append(node)
    for edge in h.edges:
        if edge not in edges:
            edges.append(edge)
    flat = h.model_copy(update={"include": [], "override": [], "nodes": nodes, "edges": edges})
    flat._where = where
    problem = next(iter(semantic_problems(flat)), None)
    if problem is not None:
        path, message, hint = problem
        owner = flat.nodes[path[1]] if path[0] == "nodes" else flat
        raise SpecError(message, hint=hint, **(owner.where(*path[2:]) if owner is not flat else where.at(*path)))
    return flat


# ----------------------------------------------------------------------------- writing


def to_data(model: SpecModel) -> dict[str, Any]:
    """The canonical plain-data form (what ``dumps`` writes): fields at their default are left out."""
    dumped = model.model_dump(mode="json")
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if not info.is_required() and value == info.get_default(call_default_factory=True):
            continue
        if isinstance(value, SpecModel) and isinstance(dumped[name], dict):  # else a serializer shortened it
            out[name] = to_data(value)
        elif isinstance(value, list) and value and all(isinstance(x, SpecModel) for x in value):
            out[name] = [to_data(x) for x in value]
        else:
            out[name] = dumped[name]
    return out


def dumps(h: Hypothesis) -> str:
    """Canonical YAML of a hypothesis; ``loads(dumps(h)) == h``."""
    return yaml.dump(to_data(h), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
