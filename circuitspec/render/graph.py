"""A verdict drawn as its hypothesis graph: each node labelled with its sites and coloured by status.

Drawing is ``circuitspec.render.hypothesis`` (the spec's renderer, on the grid or with graphviz). A report
re-renders without the spec or the model, so the graph it draws is rebuilt from the verdict: its
nodes (as ``NodeInstance``s located where the verdict placed them: the chosen sites, or the
runner-up's for an unplaced node, or anywhere when there was none) and its edges. Labels add the
sites in the paper's notation (``P16.L0.H1+H2``) or why the node was not placed; fills are the
node statuses' colours, edge strokes the edges' path-patching statuses (``EDGE_STROKE``). The gap
report's outlined sites (``render.gap.outlined_sites``) go in ``graph.graph["gap_sites"]``, drawn as
extra outlined boxes where they sit in the model.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import graphviz
import networkx as nx

from circuitspec.errors import ReportError
from circuitspec.engine.sites import Site
from circuitspec.render.gap import outlined_sites
from circuitspec.render.style import STATUS_FILL, site_label
from circuitspec.render.summary import reason_text
from circuitspec.spec.instance import NodeInstance
from circuitspec.verify.verdict import NodeVerdict, Verdict

_VAR = re.compile(r"^([A-Za-z]+)(?:\((\d+)\)|(\d+))?$")


def parse_variable(text: str) -> tuple[str, int | None]:
    """'SA(3)' or 'SA3' -> ('SA', 3); 'OPR' -> ('OPR', None)."""
    m = _VAR.match(text.strip())
    if not m:
        return (text.strip(), None)
    n = m.group(2) or m.group(3)
    return (m.group(1), int(n) if n is not None else None)


def _instance(node: NodeVerdict, verdict: Verdict) -> NodeInstance:
    lay = verdict.layout
    shown = node.sites or (node.runner_up.sites if node.runner_up is not None else [])
    sites = [Site.parse(s) for s in shown]
    kinds = {s.kind for s in sites}
    site_kind = kinds.pop() if len(kinds) == 1 and not kinds & {"resid"} else "any"
    per_cell: dict[tuple[int, int], int] = {}
    for s in sites:
        if s.kind == "head":
            per_cell[(s.position, s.layer)] = per_cell.get((s.position, s.layer), 0) + 1
    return NodeInstance(
        id=node.node,
        template=node.node,
        bindings={},
        variables=[parse_variable(v) for v in node.variables] or [(node.node, None)],
        site=site_kind if site_kind in ("head", "mlp", "neurons") else "any",
        max_heads=max(per_cell.values(), default=1),
        spread=len({s.position for s in sites}) > 1,
        positions=sorted({s.position for s in sites}) or list(range(lay.n_ctx)),
        layers=sorted({s.layer for s in sites}) or list(range(lay.n_layers)),
        attends=[],
        impacts_exactly=None,
        impacts_at_least=[],
        breaks=[],
        spares=[],
        required=node.required,
        min_accuracy=0.0,
        n_pairs=max((t.pairs for t in node.tests), default=0),
        keep=[],
        description=f"{node.node}: {node.status}" + (f" ({reason_text(node)})" if node.status != "confirmed" else ""),
    )


def verdict_digraph(verdict: Verdict) -> nx.DiGraph:
    """The expanded hypothesis graph the verdict was judged on, rebuilt from the verdict alone."""
    lay = verdict.layout
    g = nx.DiGraph(
        name=verdict.hypothesis,
        shape=SimpleNamespace(op=lay.op, digits=lay.digits, n_layers=lay.n_layers, n_heads=lay.n_heads, n_ctx=lay.n_ctx),
        position_labels=list(lay.position_labels),
        gap_sites=outlined_sites(verdict),
    )
    for n in verdict.nodes:
        g.add_node(n.node, instance=_instance(n, verdict))
    tested = {(e.source, e.target): e for e in verdict.edge_results}
    for a, b in verdict.edges:
        missing = [x for x in (a, b) if x not in g]
        if missing:
            raise ReportError(f"verdict {verdict.hypothesis!r} on {verdict.model!r} has an edge {a} -> {b} to unknown node(s) {missing}")
        e = tested.get((a, b))
        g.add_edge(a, b, **({"required": e.required, "status": e.status} if e is not None else {}))
    return g


def labels(verdict: Verdict) -> dict[str, str]:
    out = {}
    for n in verdict.nodes:
        if n.status == "not_placed":
            text = "NOT PLACED: " + (n.reason or "").replace("_", " ")
            if n.runner_up is not None:
                text += f"\nrunner-up {site_label(n.runner_up.sites)} ({n.runner_up.score:.2f})"
        else:
            text = site_label(n.sites) + ("" if n.status == "confirmed" else f"\n{n.status}")
        out[n.node] = text
    return out


def colors(verdict: Verdict) -> dict[str, str]:
    return {n.node: STATUS_FILL[n.status] for n in verdict.nodes}


def _title(verdict: Verdict) -> str:
    return f"{verdict.hypothesis} on {verdict.model}: {verdict.status}"


def verdict_graph(verdict: Verdict) -> graphviz.Digraph:
    """The verdict's graph as graphviz DOT source (laid out by ``dot`` where it is installed)."""
    from circuitspec.render.hypothesis import hypothesis_graph

    return hypothesis_graph(verdict_digraph(verdict), labels=labels(verdict), colors=colors(verdict), title=_title(verdict))


def verdict_svg(verdict: Verdict, *, style: str = "grid") -> bytes:
    """SVG of the verdict's graph: on the model's grid (no system program), or ``style='dot'`` by graphviz."""
    from circuitspec.render.hypothesis import hypothesis_svg

    return hypothesis_svg(verdict_digraph(verdict), labels=labels(verdict), colors=colors(verdict), title=_title(verdict), style=style)
