"""``circuitspec render report.json``: re-render a saved report without touching a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from circuitspec.cli.output import print_gaps, table_console


def register(app: typer.Typer) -> None:
    @app.command("render")
    def render(
        report: Path = typer.Argument(..., help="a report.json written by 'circuitspec verify' (or its folder)", show_default=False),
        out: Path = typer.Option(None, "--out", "-o", help="output folder (default: the report's folder)", show_default=False),
    ) -> None:
        """Write junit.xml, the SVGs and index.html again from a saved report.json.

        Exits 0 once everything is written (whatever the verdicts say), 2 on a missing or invalid report.
        """
        from circuitspec.render.report import load_report, write_report
        from circuitspec.render.table import verdict_table

        rep = load_report(report)
        folder = out if out is not None else (report if report.is_dir() else report.parent)
        written = write_report(rep, folder)
        table_console().print(verdict_table(rep, title="circuitspec render"))
        print_gaps(table_console(), rep.verdicts)
        Console(stderr=True).print(f"report: {written.index_html}")
