"""The cross-model matrix of one hypothesis: nodes down, models across, each cell the node's sites.

A cell reads ``P16.L0.H1+H2`` (coloured by the node's status), ``not placed``, or ``-`` when the
node does not exist in that model's expansion (e.g. SA5 in a 5-digit model). Rows keep the
hypothesis's node order, merging node lists that differ between models so that each node comes
right after the node it follows in the first model that has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from circuitspec.errors import ReportError
from circuitspec.render.style import HEADER_FILL, MISSING_FILL, STATUS_FILL, VERDICT_FILL, site_label
from circuitspec.render.svg import LINE_HEIGHT, Canvas, text_width
from circuitspec.verify.verdict import NodeVerdict, Verdict

NOT_PLACED = "not placed"
MISSING = "-"
FONT, SMALL, PAD, MARGIN = 11.0, 8.0, 5.0, 10.0


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
        raise ReportError(f"no verdicts for hypothesis {hypothesis!r}")
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


def matrix_svg(m: Matrix) -> bytes:
    """The matrix as an SVG table: a header row of models (coloured by verdict), one row per node."""
    head = [[(model, FONT), (status, SMALL)] for model, status in zip(m.models, m.model_status)]
    col_w = [
        max(60.0, max(text_width(t, size) for t, size in head[j]), *(text_width(m.cells[(n, model)].text, FONT) for n in m.nodes)) + 2 * PAD
        for j, model in enumerate(m.models)
    ]
    label_w = max([text_width("node", FONT)] + [text_width(n, FONT) for n in m.nodes]) + 2 * PAD
    head_h, row_h = (FONT + SMALL) * LINE_HEIGHT + 2 * PAD, FONT * LINE_HEIGHT + 2 * PAD
    c = Canvas()
    y = MARGIN + 13 * LINE_HEIGHT
    c.text(MARGIN, y - 3, f"{m.hypothesis} across models", size=13, anchor="start", bold=True)
    y += 4
    xs = [MARGIN + label_w]
    for w in col_w:
        xs.append(xs[-1] + w)
    c.rect(MARGIN, y, label_w, head_h, fill=HEADER_FILL)
    c.text(MARGIN + PAD, y + head_h / 2 + 4, "node", size=FONT, anchor="start", bold=True)
    for j, (model, status) in enumerate(zip(m.models, m.model_status)):
        c.group(id=f"model-{j}", cls="model", title=f"{model}: {status}")
        c.rect(xs[j], y, col_w[j], head_h, fill=VERDICT_FILL[status])
        c.lines(xs[j] + col_w[j] / 2, y + PAD, head[j])
        c.end()
    y += head_h
    for node in m.nodes:
        optional = not m.required.get(node)
        c.rect(MARGIN, y, label_w, row_h, fill=HEADER_FILL)
        c.text(MARGIN + PAD, y + row_h / 2 + 4, node, size=FONT, anchor="start", italic=optional)
        for j, model in enumerate(m.models):
            cell = m.cells[(node, model)]
            c.group(cls="cell", title=f"{node} on {model}: {cell.status or 'not in this model'}")
            c.rect(xs[j], y, col_w[j], row_h, fill=cell.fill)
            c.text(xs[j] + col_w[j] / 2, y + row_h / 2 + 4, cell.text, size=FONT)
            c.end()
        y += row_h
    c.text(MARGIN, y + 14, "italic: optional node; -: node not in this model's expansion", size=SMALL + 1, anchor="start")
    return c.to_bytes(xs[-1] + MARGIN, y + 14 + MARGIN)
