"""The node map: the paper's figure of which site implements which node, drawn from a verdict.

Columns are token positions (headed by the paper's labels: D5 .. OPR .. D'0, =, A7 .. A0 and the
position index), rows are the attention heads of each layer followed by that layer's MLP (and a
RESID row for a layer only if the verdict uses a residual-stream site there). Each cell is one of

- ``node``:   names the placed node(s) whose placement includes a site in this cell, coloured by the
  node's status (several nodes in one cell take the worst status's colour);
- ``useful``: a useful site (ablating it breaks some question) that no node was assigned to, shown
  as ``?``, or, when the verdict carries site labels (``verify --labels``), by what it computes;
- ``unused``: neither, drawn grey.

A cell holding a site of the verdict's gap report (``render.gap.outlined_sites``: the smallest set
that restores faithfulness, else the top of the ranking) is outlined, whatever its kind.

``node_map(verdict)`` returns the map as data (what tests check); ``node_map_svg`` draws it as an
SVG table (no layout engine: the grid is the layout) whose cells are ``<g id="cell_L{layer}_{H{h}|MLP|RESID}_P{pos}">``
groups with a tooltip (``<title>``) naming the position, site, node and status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import textwrap
from typing import Literal

from circuitspec.errors import ReportError
from circuitspec.engine.sites import Site
from circuitspec.render.style import (
    GAP_LEGEND,
    GAP_STROKE,
    HEADER_FILL,
    STATUS_FILL,
    STATUS_RANK,
    UNUSED_FILL,
    USEFUL_FILL,
    _neurons_text,
)
from circuitspec.render.gap import outlined_sites
from circuitspec.render.summary import reason_text
from circuitspec.render.svg import LINE_HEIGHT, Canvas, text_width
from circuitspec.verify.verdict import Verdict

CellKind = Literal["node", "useful", "unused"]
USEFUL_TEXT = "?"
NOTE_WIDTH = 110  # characters per line of the not-placed notes under the map
CELL_FONT, SMALL_FONT, TITLE_FONT = 11.0, 8.0, 13.0
PAD, MARGIN = 5.0, 10.0


@dataclass(frozen=True)
class Row:
    layer: int
    kind: Literal["head", "mlp", "resid"]
    head: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}.H{self.head}"
        return f"L{self.layer}.{self.kind.upper()}"

    @property
    def key(self) -> str:
        return self.label.replace(".", "_")


@dataclass
class Cell:
    row: Row
    position: int
    kind: CellKind = "unused"
    nodes: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    neurons: dict[str, tuple[int, ...]] = field(default_factory=dict)
    gap: bool = False  # holds a site the gap report names
    computes: list[str] = field(default_factory=list)  # useful cell: its site's labels (verify --labels)

    @property
    def id(self) -> str:
        return f"cell_{self.row.key}_P{self.position}"

    @property
    def fill(self) -> str:
        if self.kind == "node":
            return STATUS_FILL[max(self.statuses, key=STATUS_RANK.__getitem__)]
        return USEFUL_FILL if self.kind == "useful" else UNUSED_FILL


@dataclass
class NodeMap:
    title: str
    position_labels: list[str]
    rows: list[Row]
    cells: dict[tuple[Row, int], Cell]
    not_placed: list[tuple[str, str]]  # required nodes not placed: (node, why), in verdict order
    optional_not_placed: list[tuple[str, str]] = field(default_factory=list)

    def cell(self, site: str | Site) -> Cell:
        s = Site.parse(site)
        return self.cells[(_row_of(s), s.position)]

    def cells_of(self, kind: CellKind) -> list[Cell]:
        return [c for c in self.cells.values() if c.kind == kind]


def _row_of(site: Site) -> Row:
    if site.kind == "head":
        return Row(site.layer, "head", site.head)
    if site.kind in ("mlp", "neurons"):
        return Row(site.layer, "mlp")
    return Row(site.layer, "resid")


def node_map(verdict: Verdict) -> NodeMap:
    """Lay out a verdict's placed nodes and useful sites on the model's positions x (layer, head/MLP)."""
    lay = verdict.layout
    placed = [(n, [Site.parse(s) for s in n.sites]) for n in verdict.nodes if n.status != "not_placed"]
    useful = [Site.parse(s) for s in verdict.useful_sites]
    resid_layers = {s.layer for _, sites in placed for s in sites if s.kind == "resid"}
    resid_layers |= {s.layer for s in useful if s.kind == "resid"}
    rows: list[Row] = []
    for layer in range(lay.n_layers):
        rows.extend(Row(layer, "head", h) for h in range(lay.n_heads))
        rows.append(Row(layer, "mlp"))
        if layer in resid_layers:
            rows.append(Row(layer, "resid"))
    cells = {(r, p): Cell(r, p) for r in rows for p in range(lay.n_ctx)}

    def at(site: Site) -> Cell:
        key = (_row_of(site), site.position)
        if key not in cells:
            raise ReportError(
                f"site {site} of verdict {verdict.hypothesis!r} on {verdict.model!r} lies outside the model layout "
                f"({lay.n_layers} layers, {lay.n_heads} heads, {lay.n_ctx} positions)"
            )
        return cells[key]

    for node, sites in placed:
        for site in sites:
            cell = at(site)
            cell.kind = "node"
            if node.node not in cell.nodes:
                cell.nodes.append(node.node)
                cell.statuses.append(node.status)
            if str(site) not in cell.sites:  # a site two spread nodes share
                cell.sites.append(str(site))
            if site.kind == "neurons":
                merged = set(cell.neurons.get(node.node, ())) | set(site.neurons)
                cell.neurons[node.node] = tuple(sorted(merged))
    for site in useful:
        cell = at(site)
        if cell.kind == "unused":
            cell.kind = "useful"
        if str(site) not in cell.sites:
            cell.sites.append(str(site))
        note = verdict.site_note(str(site))
        if cell.kind == "useful" and note is not None:
            cell.computes += [c for c in note.computes if c not in cell.computes]
    for site in map(Site.parse, outlined_sites(verdict)):
        at(site).gap = True
    not_placed = [(n.node, reason_text(n)) for n in verdict.nodes if n.status == "not_placed" and n.required]
    optional = [(n.node, reason_text(n)) for n in verdict.nodes if n.status == "not_placed" and not n.required]
    title = f"{verdict.hypothesis} on {verdict.model}: {verdict.status}"
    return NodeMap(title, list(lay.position_labels), rows, cells, not_placed, optional)


def cell_tooltip(m: NodeMap, cell: Cell) -> str:
    """``P16 (A4) L0.H1: SA4 confirmed`` - where the cell is and what it holds."""
    where = f"P{cell.position} ({m.position_labels[cell.position]}) {cell.row.label}"
    if cell.kind == "node":
        what = ", ".join(f"{n} {s}" for n, s in zip(cell.nodes, cell.statuses))
    elif cell.kind == "useful":
        what = "useful, not assigned to any node" + (f"; computes {', '.join(cell.computes)}" if cell.computes else "")
    else:
        what = "unused"
    if cell.gap:
        what += "; in the gap report (keeping it restores faithfulness)"
    return f"{where}: {what}"


def cell_lines(cell: Cell) -> list[tuple[str, float]]:
    """The text of a cell as (line, font size): node names, each with its neurons under it."""
    if cell.kind == "useful":
        return [(c, CELL_FONT) for c in cell.computes] or [(USEFUL_TEXT, CELL_FONT)]
    out: list[tuple[str, float]] = []
    for node in cell.nodes if cell.kind == "node" else []:
        out.append((node, CELL_FONT))
        if node in cell.neurons:
            out.append((_neurons_text(cell.neurons[node]), SMALL_FONT))
    return out


def _height(lines: list[tuple[str, float]]) -> float:
    return sum(size * LINE_HEIGHT for _, size in lines)


def node_map_svg(verdict: Verdict) -> bytes:
    """The node map as an SVG table: positions across, each layer's heads then its MLP down."""
    return draw_node_map(node_map(verdict))


Legend = list[tuple[str, str]]  # (fill, text)
DEFAULT_LEGEND: Legend = [(STATUS_FILL["confirmed"], "confirmed"), (STATUS_FILL["unconfirmed"], "unconfirmed"),
                          (USEFUL_FILL, f"{USEFUL_TEXT} useful, unassigned"), (UNUSED_FILL, "unused")]


def draw_node_map(m: NodeMap, *, legend: Legend | None = None, tooltip=cell_tooltip) -> bytes:
    """Draw a node map (from a verdict, or from labels: ``render.labels``); ``tooltip(m, cell)``
    is each cell's hover text."""
    n_pos = len(m.position_labels)
    headers = [[(lbl, CELL_FONT), (f"P{p}", SMALL_FONT)] for p, lbl in enumerate(m.position_labels)]
    body = {key: cell_lines(cell) for key, cell in m.cells.items()}
    label_w = max(text_width(r.label, CELL_FONT) for r in m.rows) + 2 * PAD
    col_w = []
    for p in range(n_pos):
        texts = headers[p] + [line for r in m.rows for line in body[(r, p)]]
        col_w.append(max(28.0, max(text_width(t, size) for t, size in texts) + 2 * PAD))
    head_h = _height(headers[0]) + 2 * PAD
    row_h = [max(CELL_FONT * LINE_HEIGHT, max(_height(body[(r, p)]) for p in range(n_pos))) + 2 * PAD for r in m.rows]
    table_w = label_w + sum(col_w)
    c = Canvas()
    y = MARGIN + TITLE_FONT * LINE_HEIGHT
    c.text(MARGIN, y - 3, m.title, size=TITLE_FONT, anchor="start", bold=True)
    y += 4
    xs = [MARGIN + label_w]
    for w in col_w:
        xs.append(xs[-1] + w)
    c.rect(MARGIN, y, label_w, head_h, fill=HEADER_FILL)
    for p in range(n_pos):
        c.rect(xs[p], y, col_w[p], head_h, fill=HEADER_FILL)
        c.lines(xs[p] + col_w[p] / 2, y + PAD, headers[p])
    y += head_h
    for row, h in zip(m.rows, row_h):
        c.rect(MARGIN, y, label_w, h, fill=HEADER_FILL)
        c.text(MARGIN + PAD, y + h / 2 + CELL_FONT * 0.35, row.label, size=CELL_FONT, anchor="start")
        for p in range(n_pos):
            cell = m.cells[(row, p)]
            c.group(id=cell.id, cls=f"cell {cell.kind}" + (" gap" if cell.gap else ""), title=tooltip(m, cell))
            c.rect(xs[p], y, col_w[p], h, fill=cell.fill)
            if cell.gap:
                c.rect(xs[p] + 1.5, y + 1.5, col_w[p] - 3, h - 3, fill="none", stroke=GAP_STROKE, stroke_width=2.5)
            lines = body[(row, p)]
            c.lines(xs[p] + col_w[p] / 2, y + (h - _height(lines)) / 2, lines)
            c.end()
        y += h
    items = DEFAULT_LEGEND if legend is None else legend
    if any(cell.gap for cell in m.cells.values()):
        items = [*items, ("none", GAP_LEGEND)]
    y = _legend(c, MARGIN, y + 6, items)
    y = _notes(c, m, MARGIN, y + 4, max(table_w, 400.0))
    return c.to_bytes(MARGIN * 2 + max(table_w, 400.0), y + MARGIN)


def _legend(c: Canvas, x: float, y: float, items: Legend) -> float:
    for fill, text in items:
        c.rect(x, y, 10, 10, fill=fill, **({"stroke": GAP_STROKE, "stroke_width": 2.0} if fill == "none" else {}))
        c.text(x + 14, y + 9, text, size=10, anchor="start")
        x += 24 + text_width(text, 10)
    return y + 12


def _notes(c: Canvas, m: NodeMap, x: float, y: float, width: float) -> float:
    """The required and optional nodes that were not placed, with why, under the map."""
    per_line = max(40, int((width - 2 * PAD) / (10 * 0.62)))
    for what, items, fill in (
        ("not placed", m.not_placed, STATUS_FILL["not_placed"]),
        ("optional, not placed", m.optional_not_placed, HEADER_FILL),
    ):
        for node, why in items:
            lines = [(t, 10.0) for t in textwrap.wrap(f"{what}: {node} ({why})", min(per_line, NOTE_WIDTH))] or [("", 10.0)]
            h = _height(lines) + 4
            c.group(cls="note", title=f"{node}: {why}")
            c.rect(x, y, width, h, fill=fill, stroke=fill)
            c.lines(x + PAD, y + 2, lines, anchor="start")
            c.end()
            y += h + 2
    return y
