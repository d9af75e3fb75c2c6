"""Drawing an expanded hypothesis graph: on the model's grid (no system program), or with graphviz.

Two styles of one picture, the nodes of ``circuitspec.spec.expand(...)`` placed by where they may
run, bottom to top by sub-layer (L0 heads, L0 MLP, L1 heads, ...), left to right by token position,
as in the paper's diagrams:

- ``grid`` (the default, ``hypothesis_svg``): the grid *is* the layout, drawn by
  ``circuitspec.render.grid`` and written as SVG by this project;
- ``dot``: ``hypothesis_graph`` builds the graphviz DOT source (pure Python), which graphviz's
  ``dot`` program lays out where it is installed (``circuitspec.render.files.dot_available``).

Both draw verdicts too: ``labels`` (extra text per node, e.g. the sites found, ``P16.L0.H1+H2``)
and ``colors`` (fill per node, e.g. by verdict); sites in ``graph.graph["gap_sites"]`` (a verdict's
gap report) become extra boxes, one per grid place, outlined in ``GAP_STROKE`` with a legend line.
``write_graph`` writes SVG (either style), PNG (``dot`` only) or the DOT source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import graphviz
import networkx as nx

from circuitspec.atomic import atomic_write
from circuitspec.errors import CircuitSpecError
from circuitspec.render.files import dot_render, dot_svg
from circuitspec.render.grid import gap_places, grid_svg
from circuitspec.render.style import EDGE_STROKE, GAP_LEGEND, GAP_STROKE, site_label
from circuitspec.spec.instance import NodeInstance, span_text

FORMATS = ("svg", "png", "dot")
STYLES = ("grid", "dot")

# Fill by the family of the node's first variable.
FAMILY_FILL = {
    "S": "#cfe2f7",  # addition sub-tasks
    "M": "#f9d9b8",  # subtraction, D >= D'
    "N": "#f4c6d8",  # subtraction, D < D'
    "G": "#f4c6d8",
    "A": "#d5ecd0",  # answer digits
    "O": "#e6e0f3",  # operator / sign selection
}
DEFAULT_FILL = "#eeeeee"


def _family(inst: NodeInstance) -> str:
    name = inst.variables[0][0]
    if name in ("OPR", "SGN"):
        return "O"
    return name[0]


def _where_text(inst: NodeInstance, n_ctx: int | None, n_layers: int | None) -> str:
    pos = "any position" if n_ctx is not None and inst.positions == list(range(n_ctx)) else span_text(inst.positions, "P")
    lay = "any layer" if n_layers is not None and inst.layers == list(range(n_layers)) else "L" + span_text(inst.layers)
    kind = f"{inst.site} (spread)" if inst.spread else inst.site if inst.max_heads == 1 else f"{inst.site} x{inst.max_heads}"
    if inst.mlp_layers is not None:
        lay += " (MLPs " + ("none" if not inst.mlp_layers else "L" + span_text(inst.mlp_layers)) + ")"
    return f"{pos} · {lay} · {kind}"


def _rank(inst: NodeInstance) -> int | None:
    """The sub-layer the node runs in when that is fixed (one layer, one kind), else None (placed by its edges)."""
    stages = inst.stages()
    return stages[0] if len(stages) == 1 else None


def hypothesis_graph(
    graph: nx.DiGraph,
    *,
    labels: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> graphviz.Digraph:
    """A graphviz drawing of an expanded hypothesis graph.

    ``labels``: extra line(s) per node id (e.g. ``"P16.L0.H1+H2"``); ``colors``: fill colour per
    node id (``#rrggbb``), overriding the default colour by variable family. Optional nodes and
    edges are dashed; path-patched edges are bold; an edge by the answer route has a hollow arrowhead.
    """
    labels = dict(labels or {})
    colors = dict(colors or {})
    shape = graph.graph.get("shape")
    n_ctx = getattr(shape, "n_ctx", None)
    n_layers = getattr(shape, "n_layers", None)
    name = graph.graph.get("name", "hypothesis")
    dot = graphviz.Digraph(name=str(name), format="svg")
    gaps = gap_places(graph.graph.get("gap_sites") or [])
    heading = _heading(graph, title) + (f"\n{GAP_LEGEND}" if gaps else "")
    dot.attr(rankdir="BT", labelloc="t", label=heading, fontname="Helvetica", fontsize="16", nodesep="0.25", ranksep="0.5")
    dot.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10")
    dot.attr("edge", color="#555555", arrowsize="0.7")

    ranks: dict[int | None, list[NodeInstance]] = {}
    for node_id in graph.nodes:
        inst: NodeInstance = graph.nodes[node_id]["instance"]
        ranks.setdefault(_rank(inst), []).append(inst)

    def add(target, inst: NodeInstance) -> None:
        lines = [inst.id] + ([inst.variable_text] if inst.variable_text != inst.id else [])
        lines.append(_where_text(inst, n_ctx, n_layers))
        if labels.get(inst.id):
            lines.append(str(labels[inst.id]))
        fill = colors.get(inst.id) or FAMILY_FILL.get(_family(inst), DEFAULT_FILL)
        style = "rounded,filled" + ("" if inst.required else ",dashed")
        target.node(inst.id, label="\n".join(lines), fillcolor=fill, style=style, tooltip=inst.description or inst.id)

    for inst in ranks.pop(None, []):
        add(dot, inst)
    members: dict[int, list[tuple[int, str, NodeInstance | None]]] = {}  # rank -> (position, DOT id, node; None: gap box)
    for rank, insts in ranks.items():
        members[rank] = [(min(i.positions), i.id, i) for i in insts]
    for stage, pos, sites in gaps:
        members.setdefault(stage, []).append((pos, site_label(sites), None))
    for rank in sorted(members):
        with dot.subgraph(name=f"rank_{rank}") as sub:
            sub.attr(rank="same")
            row = sorted(members[rank], key=lambda m: m[:2])
            for _, key, inst in row:
                if inst is not None:
                    add(sub, inst)
                else:
                    sub.node(key, label=f"{key}\ngap report", shape="box", style="bold", color=GAP_STROKE, penwidth="2.5",
                             tooltip=f"{key}: gap report (no node holds it)")
            for (_, a, _), (_, b, _) in zip(row, row[1:]):  # keep positions left to right within a rank
                sub.edge(a, b, style="invis")

    for a, b, data in graph.edges(data=True):
        attrs = {}
        if not data.get("required", True):
            attrs["style"] = "dashed"
        route = " (route: answer)" if data.get("route") == "answer" else ""
        if route:
            attrs["arrowhead"] = "empty"
        if data.get("status"):
            attrs["color"] = EDGE_STROKE[data["status"]]
            attrs["penwidth"] = "1.6"
        if route or data.get("status"):
            attrs["tooltip"] = f"{a} -> {b}{route}" + (f": {data['status']}" if data.get("status") else "")
        dot.edge(a, b, **attrs)
    return dot


def _heading(graph: nx.DiGraph, title: str | None) -> str:
    if title is not None:
        return title
    shape, name = graph.graph.get("shape"), graph.graph.get("name", "hypothesis")
    return f"{name}" + (f" ({shape.op} d{shape.digits} l{shape.n_layers} h{shape.n_heads})" if shape else "")


def _position_labels(graph: nx.DiGraph) -> list[str]:
    """The paper's label of every position (``D5`` .. ``=`` .. ``A0``), from the graph or its shape."""
    if graph.graph.get("position_labels"):
        return list(graph.graph["position_labels"])
    shape = graph.graph.get("shape")
    if shape is None or getattr(shape, "n_ctx", None) is None:
        return []
    from circuitspec.tasks.registry import vocabulary

    lay = vocabulary(shape.op).layout(shape.digits, getattr(shape, "layout", None))
    return [lay.label(p) for p in range(min(shape.n_ctx, lay.n_ctx))]


def hypothesis_svg(
    graph: nx.DiGraph,
    *,
    labels: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    style: str = "grid",
) -> bytes:
    """SVG of an expanded hypothesis graph: ``grid`` drawn here, ``dot`` laid out by graphviz (needs ``dot``)."""
    if style not in STYLES:
        raise CircuitSpecError(f"unknown graph style {style!r}", hint="allowed: " + ", ".join(STYLES))
    if style == "dot":
        return dot_svg(hypothesis_graph(graph, labels=labels, colors=colors, title=title))
    shape = graph.graph.get("shape")
    n_ctx, n_layers = getattr(shape, "n_ctx", None), getattr(shape, "n_layers", None)
    drawn = graph.copy()
    drawn.graph["position_labels"] = _position_labels(graph)
    return grid_svg(
        drawn,
        labels=dict(labels or {}),
        colors=dict(colors or {}),
        title=_heading(graph, title),
        fill_of=lambda inst: FAMILY_FILL.get(_family(inst), DEFAULT_FILL),
        where_of=lambda inst: _where_text(inst, n_ctx, n_layers),
    )


def write_graph(
    graph: nx.DiGraph,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    style: str = "grid",
    labels: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Write an expanded hypothesis graph as SVG (``style`` grid or dot), PNG (laid out by ``dot``) or DOT source."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise CircuitSpecError(f"unknown graph format {fmt!r}", hint="allowed: " + ", ".join(FORMATS))
    if path.parent and not path.parent.exists():
        raise CircuitSpecError(f"folder {path.parent} does not exist", file=str(path))
    kw = {"labels": labels, "colors": colors, "title": title}
    if fmt == "dot":
        data = hypothesis_graph(graph, **kw).source.encode("utf-8")
    elif fmt == "png":
        data = dot_render(hypothesis_graph(graph, **kw), "png")
    else:
        data = hypothesis_svg(graph, style=style, **kw)
    return atomic_write(path, data)
