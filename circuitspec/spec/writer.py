"""Writing proposed hypotheses as YAML a person reads and edits: comments, the spec's short forms.

``dumps`` (``spec.loader``) writes a loaded hypothesis back canonically, without comments. A
proposed hypothesis needs more: why each node is there (the sites and the interchange accuracy
behind it) and what was left out. ``document`` writes a whole spec, ``node_lines`` /
``edge_lines`` the items a patch adds to a user's file. Every scalar goes through the YAML
emitter, so what is written loads back as written (``circuitspec.spec.load``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from circuitspec.spec.generalise import NodeDraft

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class EdgeDraft:
    """An edge as the writer writes it; ``evidence``: its path-patching results, for the comment."""

    flow: str
    for_each: str | None = None
    optional: bool = False
    evidence: tuple[str, ...] = ()

    def data(self) -> dict:
        """The edge as spec data (what ``Hypothesis.build`` takes)."""
        out: dict = {"flow": self.flow}
        if self.for_each is not None:
            out["for_each"] = {"n": self.for_each}
        if self.optional:
            out["optional"] = True
        return out


def scalar(value) -> str:
    """One value in YAML flow form (quoted only where YAML needs it)."""
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def comment(lines: Sequence[str], indent: str = "") -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in lines]


def node_lines(d: NodeDraft, indent: str = "  ") -> list[str]:
    """One ``- id: ...`` item of ``nodes:``, its evidence as comments above it."""
    out = comment(d.evidence, indent)
    fields = [("id", d.id)]
    if d.for_each is not None:
        fields.append(("for_each", None))
    fields += [("computes", d.computes), ("site", d.site)]
    if d.max_heads > 1:
        fields.append(("max_heads", d.max_heads))
    fields += [("at", d.at), ("layers", d.layers)]
    if d.keep:
        fields.append(("test", {"keep": list(d.keep)}))
    for i, (key, value) in enumerate(fields):
        lead = f"{indent}- " if i == 0 else f"{indent}  "
        text = f"{{n: {scalar(d.for_each)}}}" if key == "for_each" else scalar(value)
        out.append(f"{lead}{key}: {text}")
    return out


def edge_lines(d: EdgeDraft, indent: str = "  ") -> list[str]:
    """One ``- flow: ...`` item of ``edges:``."""
    out = comment(d.evidence, indent) + [f"{indent}- flow: {scalar(d.flow)}"]
    if d.for_each is not None:
        out.append(f"{indent}  for_each: {{n: {scalar(d.for_each)}}}")
    if d.optional:
        out.append(f"{indent}  optional: true")
    return out


def document(
    *,
    header: Sequence[str],
    name: str,
    description: str,
    task: str,
    applies_to: dict[str, str | int],
    nodes: Sequence[NodeDraft],
    explains: Sequence[str] = (),
    edges: Sequence[EdgeDraft],
    checks: dict[str, float] | None,
    footer: Sequence[str] = (),
) -> str:
    """A whole spec file: header comments, the hypothesis's fields (``explains``: the classes it
    claims, empty for all), nodes, edges, checks."""
    out = comment(header)
    out += [f"name: {scalar(name)}", f"description: {scalar(description)}", f"task: {scalar(task)}"]
    out.append("applies_to: {" + ", ".join(f"{k}: {scalar(v)}" for k, v in applies_to.items()) + "}")
    if explains:
        out.append(f"explains: {scalar(list(explains))}")
    out += ["", "nodes:"]
    for d in nodes:
        out += node_lines(d) + [""]
    if edges:
        out.append("edges:")
        for e in edges:
            out += edge_lines(e) + [""]
    if checks:
        out.append("checks: {" + ", ".join(f"{k}: {scalar(v)}" for k, v in checks.items()) + "}")
    out += comment(footer)
    return "\n".join(out).rstrip("\n") + "\n"
