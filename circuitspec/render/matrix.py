"""The cross-model matrix of one hypothesis: nodes down, models across, each cell the node's sites.

A cell reads ``P16.L0.H1+H2`` (coloured by the node's status), ``not placed``, or ``-`` when the
node does not exist in that model's expansion (e.g. SA5 in a 5-digit model). Rows keep the
hypothesis's node order, merging node lists that differ between models so that each node comes
right after the node it follows in the first model that has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import graphviz

from circuitspec.render.style import HEADER_FILL, MISSING_FILL, STATUS_FILL, VERDICT_FILL, site_label
from circuitspec.verify.verdict import NodeVerdict, Verdict

NOT_PLACED = "not placed"
MISSING = "-"


@dataclass(frozen=True)
class MatrixCell:
    text: str
    status: str | None  # node status, None where the node is missing from the model

    @property
    def fill(self) -> str:
        return MISSING_FILL if self.status is None else STATUS_FILL[self.status]


@dataclass(frozen=True)
class Matrix:
    hypothesis: str
    models: list[str]
    model_status: list[str]
    nodes: list[str]
    required: dict[str, bool]
    cells: dict[tuple[str, str], MatrixCell]  # (node, model) -> cell


def merge_orders(orders: Sequence[Sequence[str]]) -> list[str]:
    """Union of several sequences, keeping each one's order: a new item goes right after its predecessor."""
    out: list[str] = []
    for seq in orders:
        prev = None
        for item in seq:
            if item not in out:
                out.insert(0 if prev is None else out.index(prev) + 1, item)
            prev = item
    return out


def _cell(node: NodeVerdict | None) -> MatrixCell:
    if node is None:
        return MatrixCell(MISSING, None)
    if node.status == "not_placed":
        return MatrixCell(NOT_PLACED, "not_placed")
    return MatrixCell(site_label(node.sites), node.status)


def matrix(verdicts: Sequence[Verdict], hypothesis: str) -> Matrix:
    """The matrix of ``hypothesis`` over the models it has verdicts for (models sorted by name)."""
    mine = sorted((v for v in verdicts if v.hypothesis == hypothesis), key=lambda v: v.model)
    if not mine:
        raise ValueError(f"no verdicts for hypothesis {hypothesis!r}")
    nodes = merge_orders([[n.node for n in v.nodes] for v in mine])
    required: dict[str, bool] = {}
    cells: dict[tuple[str, str], MatrixCell] = {}
    for v in mine:
        by_id = {n.node: n for n in v.nodes}
        for node in nodes:
            nv = by_id.get(node)
            if nv is not None:
                required[node] = required.get(node, False) or nv.required
            cells[(node, v.model)] = _cell(nv)
    return Matrix(hypothesis, [v.model for v in mine], [v.status for v in mine], nodes, required, cells)


def matrix_graph(m: Matrix) -> graphviz.Digraph:
    """The matrix as a graphviz HTML-like table (lay out with ``dot``)."""
    ncols = len(m.models) + 1
    rows = ['<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">']
    rows.append(f'<TR><TD COLSPAN="{ncols}" BORDER="0"><B>{escape(m.hypothesis)} across models</B></TD></TR>')
    head = [f'<TD BGCOLOR="{HEADER_FILL}"><B>node</B></TD>']
    for model, status in zip(m.models, m.model_status):
        head.append(
            f'<TD BGCOLOR="{VERDICT_FILL[status]}">{escape(model)}<BR/><FONT POINT-SIZE="9">{escape(status)}</FONT></TD>'
        )
    rows.append("<TR>" + "".join(head) + "</TR>")
    for node in m.nodes:
        name = escape(node) if m.required.get(node) else f"<I>{escape(node)}</I>"
        tds = [f'<TD BGCOLOR="{HEADER_FILL}" ALIGN="LEFT">{name}</TD>']
        for model in m.models:
            c = m.cells[(node, model)]
            tds.append(f'<TD BGCOLOR="{c.fill}">{escape(c.text)}</TD>')
        rows.append("<TR>" + "".join(tds) + "</TR>")
    rows.append(f'<TR><TD COLSPAN="{ncols}" BORDER="0" ALIGN="LEFT"><FONT POINT-SIZE="9">'
                "italic: optional node; -: node not in this model's expansion</FONT></TD></TR>")
    rows.append("</TABLE>")
    g = graphviz.Digraph(name="matrix", node_attr={"fontname": "Helvetica", "fontsize": "11"})
    g.node("matrix", label="<" + "".join(rows) + ">", shape="plain")
    return g


def matrix_html(m: Matrix) -> str:
    """The matrix as an HTML table for the report page."""
    out = ['<table class="matrix"><thead><tr><th>node</th>']
    for model, status in zip(m.models, m.model_status):
        out.append(f'<th style="background:{VERDICT_FILL[status]}">{escape(model)}<br><small>{escape(status)}</small></th>')
    out.append("</tr></thead><tbody>")
    for node in m.nodes:
        name = escape(node) if m.required.get(node) else f"<i>{escape(node)}</i>"
        out.append(f"<tr><th>{name}</th>")
        for model in m.models:
            c = m.cells[(node, model)]
            out.append(f'<td style="background:{c.fill}">{escape(c.text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)
