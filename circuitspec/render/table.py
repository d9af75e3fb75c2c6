"""The terminal summary: a rich table with one row per (hypothesis, model), and the wall time per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text

from circuitspec.render.style import VERDICT_RICH, fmt_estimate
from circuitspec.render.summary import counts, edge_counts, worst_text
from circuitspec.verify.verdict import Report, Verdict

COLUMNS = ("hypothesis", "model", "verdict", "nodes placed/required", "edges confirmed/required", "faithfulness [95% CI]", "worst node")


def rows(verdicts: Sequence[Verdict]) -> list[tuple[str, ...]]:
    """The table's cells as plain strings (also what tests check)."""
    return [
        (v.hypothesis, v.model, v.status, counts(v).text, edge_counts(v), fmt_estimate(v.metrics.faithfulness), worst_text(v))
        for v in verdicts
    ]


def verdict_table(verdicts: Sequence[Verdict] | Report, *, title: str | None = "circuitspec verify") -> Table:
    if isinstance(verdicts, Report):
        verdicts = verdicts.verdicts
    table = Table(title=title, show_lines=False)
    for name in COLUMNS:
        table.add_column(name, no_wrap=name in ("hypothesis", "model", "verdict"), overflow="fold")
    for v, cells in zip(verdicts, rows(verdicts)):
        styled = [Text(c) for c in cells]
        styled[2] = Text(v.status, style=VERDICT_RICH[v.status])
        table.add_row(*styled)
    return table


def timing_rows(seconds: Mapping[str, float | None]) -> list[tuple[str, str]]:
    """(model, wall time) per model in name order; ``None`` (verdicts reused from an earlier run) reads 'reused'."""
    return [(m, "reused" if s is None else f"{s:.1f} s") for m, s in sorted(seconds.items())]


def timing_table(seconds: Mapping[str, float | None], *, jobs: int | None = None) -> Table:
    """Wall time of each model's work item (load and verify, timed in its worker)."""
    title = "wall time per model" + (f" (--jobs {jobs})" if jobs else "")
    table = Table(title=title, show_lines=False)
    table.add_column("model", no_wrap=True)
    table.add_column("wall time", justify="right")
    for model, text in timing_rows(seconds):
        table.add_row(model, text)
    return table
