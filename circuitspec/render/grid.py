"""A hypothesis graph drawn on the model's grid, as the paper draws its maps: no layout engine needed.

Columns are token positions (only those some node may use, in order, headed by the paper's
labels), rows are where a node may run, bottom to top: ``L0 attn``, ``L0 MLP``, ``L1 attn`` ... (a
node free to run in several sub-layers gets a row of its own, e.g. ``L0..L1``, placed by its lowest
one). A node is a box over the columns of its positions (stretched when it may sit at several), so
its place in the picture is its place in the model; nodes that share a row and overlap stack in
lanes. A node the verdict could put anywhere (not placed, no runner-up) goes in a band on top.
Edges are curves from box to box, dashed when optional, bold when path-patched; the title of
an edge by the answer route says so.

Sites a graph names in ``graph.graph["gap_sites"]`` (a verdict's gap report: ``render.gap.outlined_sites``)
are drawn as extra boxes at their own grid place, one per place (co-located heads together):
square, white, outlined in ``GAP_STROKE``, with a legend line under the title.

``grid_svg(graph, labels=..., colors=...)`` takes the same arguments as the graphviz drawing in
``circuitspec.render.hypothesis`` and writes the SVG itself: each node is ``<g class="node"
id="node-ID">`` titled by its id (its description in ``<desc>``), each edge ``<g class="edge"
id="edge-A-B">`` titled ``A->B``, as graphviz names them, each gap box ``<g class="gap">`` titled
by its sites.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from circuitspec.engine.sites import Site
from circuitspec.render.style import DEFAULT_EDGE_STROKE, EDGE_STROKE, GAP_LEGEND, GAP_STROKE, site_label
from circuitspec.render.svg import LINE_HEIGHT, Canvas, text_width
from circuitspec.spec.instance import NodeInstance

NAME_FONT, TEXT_FONT, SMALL_FONT = 11.0, 10.0, 9.0
PAD, GAP, MARGIN, LABEL_W = 5.0, 10.0, 12.0, 72.0
ANYWHERE = (-1,)  # row key of nodes with no position or sub-layer to go by


@dataclass
class Box:
    id: str  # node id, or the gap sites' label
    desc: str
    dashed: bool
    lines: list[tuple[str, float]]
    fill: str
    row: tuple[int, ...]
    cols: tuple[int, int]  # first and last column index (inclusive); anywhere band: order in the band
    gap: bool = False
    w: float = 0.0
    h: float = 0.0
    x: float = 0.0
    y: float = 0.0
    lane: int = 0


def row_label(stages: tuple[int, ...]) -> str:
    """``(0,)`` -> 'L0 attn', ``(1,)`` -> 'L0 MLP', ``(2, 3)`` -> 'L1', ``(0, 1, 2, 3)`` -> 'L0..L1'."""
    if stages == ANYWHERE:
        return "anywhere"
    if len(stages) == 1:
        return f"L{stages[0] // 2} {'MLP' if stages[0] % 2 else 'attn'}"
    lo, hi = stages[0] // 2, stages[-1] // 2
    if stages == tuple(range(2 * lo, 2 * hi + 2)):
        return f"L{lo}" if lo == hi else f"L{lo}..L{hi}"
    return " ".join(row_label((s,)) for s in stages)


def _anywhere(inst: NodeInstance, n_ctx: int | None, n_layers: int | None) -> bool:
    all_pos = n_ctx is not None and inst.positions == list(range(n_ctx))
    all_layers = n_layers is not None and inst.layers == list(range(n_layers))
    return not inst.positions or not inst.stages() or (all_pos and all_layers)


def gap_places(sites: Sequence[str]) -> list[tuple[int, int, list[str]]]:
    """Gap sites grouped by grid place: (sub-layer, position, sites), heads 2*layer and MLPs or neurons 2*layer+1."""
    places: dict[tuple[int, int], list[str]] = {}
    for s in sorted(map(Site.parse, sites)):
        places.setdefault((2 * s.layer + (s.kind != "head"), s.position), []).append(str(s))
    return [(stage, pos, group) for (stage, pos), group in sorted(places.items())]


def _boxes(graph: nx.DiGraph, labels, colors, fill_of, where_of, n_ctx, n_layers) -> tuple[list[Box], list[int]]:
    insts = [graph.nodes[n]["instance"] for n in graph.nodes]
    placed = {i.id for i in insts if not _anywhere(i, n_ctx, n_layers)}
    gaps = gap_places(graph.graph.get("gap_sites") or [])
    columns = sorted({p for i in insts if i.id in placed for p in i.positions} | {p for _, p, _ in gaps})
    col_of = {p: k for k, p in enumerate(columns)}
    boxes, band = [], 0
    for inst in insts:
        lines = [(inst.id, NAME_FONT)]
        if inst.variable_text != inst.id:
            lines.append((inst.variable_text, TEXT_FONT))
        lines.append((where_of(inst), SMALL_FONT))
        lines += [(t, TEXT_FONT) for t in str(labels.get(inst.id) or "").split("\n") if t]
        fill = colors.get(inst.id) or fill_of(inst)
        if inst.id in placed:
            row, cols = tuple(inst.stages()), (col_of[min(inst.positions)], col_of[max(inst.positions)])
        else:
            row, cols, band = ANYWHERE, (band, band), band + 1
        boxes.append(Box(inst.id, inst.description, not inst.required, lines, fill, row, cols))
    for stage, pos, sites in gaps:
        label = site_label(sites)
        boxes.append(Box(label, "", False, [(label, NAME_FONT), ("gap report", SMALL_FONT)], "#ffffff", (stage,),
                         (col_of[pos], col_of[pos]), gap=True))
    for box in boxes:
        box.w = max(56.0, max(text_width(t, s) for t, s in box.lines) + 2 * PAD)
        box.h = sum(s * LINE_HEIGHT for _, s in box.lines) + 2 * PAD
    return boxes, columns


def _lanes(boxes: list[Box]) -> int:
    """Stack overlapping boxes of one row in lanes (first lane free over the box's columns); returns the lane count."""
    ends: list[int] = []  # per lane, the last column used
    for b in sorted(boxes, key=lambda b: (b.cols[0], b.cols[1], b.gap, b.id)):
        lane = next((k for k, end in enumerate(ends) if end < b.cols[0]), len(ends))
        if lane == len(ends):
            ends.append(b.cols[1])
        ends[lane] = b.cols[1]
        b.lane = lane
    return len(ends)


def _column_widths(boxes: list[Box], n_cols: int, headers: list[str]) -> list[float]:
    widths = [max(40.0, text_width(h, TEXT_FONT) + 2 * PAD) for h in headers] + [0.0] * (n_cols - len(headers))
    for b in sorted(boxes, key=lambda b: b.cols[1] - b.cols[0]):  # single columns first, then spans
        c0, c1 = b.cols
        short = b.w + GAP - sum(widths[c0 : c1 + 1])
        if short > 0:
            widths[c1] += short
    return widths


def grid_svg(
    graph: nx.DiGraph,
    *,
    labels: Mapping[str, str],
    colors: Mapping[str, str],
    title: str,
    fill_of,
    where_of,
) -> bytes:
    """The SVG of ``graph`` on its model's grid (see the module docstring); ``fill_of(inst)`` and
    ``where_of(inst)`` give a node's default fill and its where-text."""
    shape = graph.graph.get("shape")
    n_ctx, n_layers = getattr(shape, "n_ctx", None), getattr(shape, "n_layers", None)
    pos_labels = list(graph.graph.get("position_labels") or [])
    boxes, columns = _boxes(graph, labels, colors, fill_of, where_of, n_ctx, n_layers)
    grid = [b for b in boxes if b.row != ANYWHERE]
    band = [b for b in boxes if b.row == ANYWHERE]
    headers = [(pos_labels[p] if p < len(pos_labels) else "") for p in columns]
    widths = _column_widths(grid, len(columns), headers)
    xs = [MARGIN + LABEL_W]
    for w in widths:
        xs.append(xs[-1] + w)
    rows = sorted({b.row for b in grid}, key=lambda r: (r[0], r[-1], len(r)))
    row_h: dict[tuple[int, ...], float] = {}
    for r in rows:
        members = [b for b in grid if b.row == r]
        lanes = _lanes(members)
        row_h[r] = lanes * (max(b.h for b in members) + GAP) + GAP
    width = max(xs[-1], MARGIN + LABEL_W + sum(b.w + GAP for b in band)) + MARGIN
    c = Canvas()
    y = MARGIN + 14 * LINE_HEIGHT
    c.text(MARGIN, y - 4, title, size=14, anchor="start", bold=True)
    width = max(width, 2 * MARGIN + text_width(title, 14))
    if any(b.gap for b in boxes):
        y = _gap_legend(c, y + GAP)
        width = max(width, 2 * MARGIN + 14 + text_width(GAP_LEGEND, TEXT_FONT))
    if band:
        y = _band(c, band, y + GAP)
    top = y + GAP
    for k in range(len(columns)):  # light stripes: one per token position
        c.rect(xs[k], top, widths[k], sum(row_h.values()), fill="#f7f7f7" if k % 2 else "#ffffff", stroke="none")
    y = top
    for r in reversed(rows):  # the lowest sub-layer at the bottom
        members = [b for b in grid if b.row == r]
        box_h = max(b.h for b in members)
        c.rect(MARGIN, y, xs[-1] - MARGIN, row_h[r], fill="none", stroke="#dddddd")
        c.text(MARGIN + 4, y + row_h[r] / 2 + 4, row_label(r), size=TEXT_FONT, anchor="start", fill="#555555")
        for b in members:
            c0, c1 = b.cols
            if c1 > c0:
                b.w = xs[c1 + 1] - xs[c0] - GAP
            b.x = (xs[c0] + xs[c1 + 1]) / 2 - b.w / 2
            b.y = y + GAP + b.lane * (box_h + GAP) + (box_h - b.h) / 2
        y += row_h[r]
    for k, label in enumerate(headers):
        c.lines((xs[k] + xs[k + 1]) / 2, y + 2, [(label, TEXT_FONT), (f"P{columns[k]}", SMALL_FONT)], fill="#555555")
    y += (TEXT_FONT + SMALL_FONT) * LINE_HEIGHT + 4
    _edges(c, graph, {b.id: b for b in boxes if not b.gap})
    for b in boxes:
        _box(c, b)
    return c.to_bytes(width, y + MARGIN)


def _band(c: Canvas, band: list[Box], y: float) -> float:
    c.text(MARGIN + 4, y + 14, row_label(ANYWHERE), size=TEXT_FONT, anchor="start", fill="#555555")
    x = MARGIN + LABEL_W
    for b in band:
        b.x, b.y = x, y
        x += b.w + GAP
    return y + max(b.h for b in band)


def _gap_legend(c: Canvas, y: float) -> float:
    c.rect(MARGIN, y, 10, 10, fill="none", stroke=GAP_STROKE, stroke_width=2.0)
    c.text(MARGIN + 14, y + 9, GAP_LEGEND, size=TEXT_FONT, anchor="start")
    return y + 10


def _box(c: Canvas, b: Box) -> None:
    if b.gap:
        c.group(id="gap-" + re.sub(r"[^A-Za-z0-9.]+", "_", b.id), cls="gap", title=f"{b.id}: gap report (no node holds it)")
        c.rect(b.x, b.y, b.w, b.h, fill=b.fill, stroke=GAP_STROKE, stroke_width=2.5)
    else:
        c.group(id=f"node-{b.id}", cls="node", title=b.id, desc=b.desc)
        c.rect(b.x, b.y, b.w, b.h, fill=b.fill, stroke="#444444", rx=6, dashed=b.dashed)
    c.lines(b.x + b.w / 2, b.y + PAD, b.lines)
    c.end()


def _edges(c: Canvas, graph: nx.DiGraph, boxes: Mapping[str, Box]) -> None:
    for a, b, data in graph.edges(data=True):
        s, t = boxes[a], boxes[b]
        sx, tx = s.x + s.w / 2, t.x + t.w / 2
        if t.y + t.h <= s.y:  # target above: top of the source to the bottom of the target
            sy, ty = s.y, t.y + t.h
        elif s.y + s.h <= t.y:  # target below
            sy, ty = s.y + s.h, t.y
        else:  # side by side in one row
            sy = ty = s.y + s.h / 2
            sx, tx = (s.x + s.w, t.x) if s.x < t.x else (s.x, t.x + t.w)
        bend = (ty - sy) / 2 if sy != ty else -20.0
        d = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy + bend:.1f} {tx:.1f},{ty - bend:.1f} {tx:.1f},{ty:.1f}"
        status = data.get("status")
        route = " (route: answer, through the target or around it)" if data.get("route") == "answer" else ""
        c.group(id=f"edge-{a}-{b}", cls="edge", title=f"{a}->{b}{route}" + (f": {status}" if status else ""))
        stroke = EDGE_STROKE[status] if status else DEFAULT_EDGE_STROKE
        c.path(d, stroke=stroke, width=1.6 if status else 1.0, dashed=not data.get("required", True), arrow=True)
        c.end()
