"""The node map: the paper's figure of which site implements which node, drawn from a verdict.

Columns are token positions (headed by the paper's labels: D5 .. OPR .. D'0, =, A7 .. A0 and the
position index), rows are the attention heads of each layer followed by that layer's MLP (and a
RESID row for a layer only if the verdict uses a residual-stream site there). Each cell is one of

- ``node``:   names the placed node(s) whose realisation includes a site in this cell, coloured by the
  node's status (several nodes in one cell take the worst status's colour);
- ``useful``: a useful site (ablating it breaks some question) that no node was assigned to;
- ``unused``: neither, drawn grey.

``node_map(verdict)`` returns the map as data (what tests check); ``node_map_graph`` draws it as a
graphviz HTML-like table whose cells carry ids ``cell_L{layer}_{H{h}|MLP|RESID}_P{pos}`` (in the
SVG they become ``<g id="a_cell_...">``) and tooltips naming the node, site and status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import textwrap
from html import escape
from typing import Literal

import graphviz

from circuitspec.engine.sites import Site
from circuitspec.render.style import (
    HEADER_FILL,
    STATUS_FILL,
    STATUS_RANK,
    UNUSED_FILL,
    USEFUL_FILL,
    _neurons_text,
)
from circuitspec.render.summary import reason_text
from circuitspec.verify.verdict import Verdict

CellKind = Literal["node", "useful", "unused"]
USEFUL_TEXT = "?"
NOTE_WIDTH = 110  # characters per line of the not-placed notes under the map


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
            raise ValueError(
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
    not_placed = [(n.node, reason_text(n)) for n in verdict.nodes if n.status == "not_placed" and n.required]
    optional = [(n.node, reason_text(n)) for n in verdict.nodes if n.status == "not_placed" and not n.required]
    title = f"{verdict.hypothesis} on {verdict.model}: {verdict.status}"
    return NodeMap(title, list(lay.position_labels), rows, cells, not_placed, optional)


def _td(text: str, *, fill: str, attrs: str = "", small: str = "") -> str:
    body = escape(text) if text else " "
    if small:
        body += f'<BR/><FONT POINT-SIZE="8">{escape(small)}</FONT>'
    return f'<TD BGCOLOR="{fill}"{attrs}>{body}</TD>'


def _cell_td(m: NodeMap, cell: Cell) -> str:
    label = m.position_labels[cell.position]
    where = f"P{cell.position} ({label}) {cell.row.label}"
    if cell.kind == "node":
        what = ", ".join(f"{n} {s}" for n, s in zip(cell.nodes, cell.statuses))
    elif cell.kind == "useful":
        what = "useful, not assigned to any node"
    else:
        what = "unused"
    tip = escape(f"{where}: {what}", quote=True)
    if cell.kind == "node":
        parts = []
        for node in cell.nodes:
            part = escape(node)
            if node in cell.neurons:
                part += f'<BR/><FONT POINT-SIZE="8">{escape(_neurons_text(cell.neurons[node]))}</FONT>'
            parts.append(part)
        body = "<BR/>".join(parts)
    else:
        body = escape(USEFUL_TEXT) if cell.kind == "useful" else " "
    return f'<TD ID="{cell.id}" HREF="#" TOOLTIP="{tip}" BGCOLOR="{cell.fill}">{body}</TD>'


def node_map_graph(verdict: Verdict) -> graphviz.Digraph:
    """The node map as one graphviz node with an HTML-like table label (lay out with ``dot``)."""
    m = node_map(verdict)
    ncols = len(m.position_labels) + 1
    out = ['<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">']
    out.append(f'<TR><TD COLSPAN="{ncols}" BORDER="0"><B>{escape(m.title)}</B></TD></TR>')
    header = [_td("", fill=HEADER_FILL)]
    header += [_td(lbl, fill=HEADER_FILL, small=f"P{p}") for p, lbl in enumerate(m.position_labels)]
    out.append("<TR>" + "".join(header) + "</TR>")
    for row in m.rows:
        tds = [_td(row.label, fill=HEADER_FILL)]
        tds += [_cell_td(m, m.cells[(row, p)]) for p in range(len(m.position_labels))]
        out.append("<TR>" + "".join(tds) + "</TR>")
    legend = (
        f'<FONT COLOR="{STATUS_FILL["confirmed"]}">&#9632;</FONT> confirmed  '
        f'<FONT COLOR="{STATUS_FILL["unconfirmed"]}">&#9632;</FONT> unconfirmed  '
        f'<FONT COLOR="{USEFUL_FILL}">&#9632;</FONT> {USEFUL_TEXT} useful, unassigned  '
        f'<FONT COLOR="{UNUSED_FILL}">&#9632;</FONT> unused'
    )
    out.append(f'<TR><TD COLSPAN="{ncols}" BORDER="0" ALIGN="LEFT">{legend}</TD></TR>')
    out.append("</TABLE>")
    g = graphviz.Digraph(name="nodemap", graph_attr={"fontname": "Helvetica", "ranksep": "0.1"}, node_attr={"fontname": "Helvetica", "fontsize": "11"})
    g.node("map", label="<" + "".join(out) + ">", shape="plain")
    notes = []
    for what, items, fill in (
        ("not placed", m.not_placed, STATUS_FILL["not_placed"]),
        ("optional, not placed", m.optional_not_placed, HEADER_FILL),
    ):
        for node, why in items:
            lines = textwrap.wrap(f"{what}: {node} ({why})", NOTE_WIDTH) or [""]
            body = '<BR ALIGN="LEFT"/>'.join(escape(x) for x in lines) + '<BR ALIGN="LEFT"/>'
            notes.append(f'<TR><TD ALIGN="LEFT" BALIGN="LEFT" BGCOLOR="{fill}">{body}</TD></TR>')
    if notes:
        # a node of its own under the map, so long reasons never widen the map's columns
        table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">' + "".join(notes) + "</TABLE>"
        g.node("notes", label="<" + table + ">", shape="plain")
        g.edge("map", "notes", style="invis")
    return g
