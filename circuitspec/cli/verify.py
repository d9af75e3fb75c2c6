"""``circuitspec verify SPEC...``: test hypotheses on a zoo and write the report.

Exit codes: 0 every verdict holds; 1 some hypothesis fails or is inconclusive (an inconclusive
verdict has not shown that the circuit is there, so CI treats it like a failure); 2 a usage, spec or
model error (printed without a traceback), including "no hypothesis applies to any selected model"
and a report folder that another running verify holds. The exit code is about this run's pairs;
verdicts that earlier runs left in the folder join the report but not the exit code.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from circuitspec.cli.output import print_gaps, table_console

DEFAULT_OUT = Path("circuitspec-report")


def exit_code(statuses) -> int:
    """0 if every verdict holds (not-applicable ones aside), 1 if any fails or is inconclusive."""
    return 1 if any(s in ("fails", "inconclusive") for s in statuses) else 0


class _Progress:
    """Rich progress: one line per model showing its stage, and an overall bar of models finished."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[model]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.overall = self.progress.add_task("models", total=None, model="all models")  # known as models report in
        self.tasks: dict[str, int] = {}
        self.enabled = enabled
        self.seconds: dict[str, float | None] = {}  # per model: its worker's wall time, None when reused

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def _task(self, model: str, total: int) -> int:
        if model not in self.tasks:
            self.tasks[model] = self.progress.add_task("queued", total=max(total, 1), model=model)
            self.progress.update(self.overall, total=len(self.tasks))
        return self.tasks[model]

    def __call__(self, event) -> None:
        t = self._task(event.model, event.hypotheses)
        if event.stage == "cached":
            self.seconds[event.model] = None
            self.progress.update(t, description=f"[dim]{event.detail}", completed=event.hypotheses)
            self.progress.advance(self.overall)
        elif event.stage == "done":
            self.seconds[event.model] = event.seconds
            self.progress.update(t, description=f"done: {event.detail}", completed=event.hypotheses)
            self.progress.advance(self.overall)
        elif event.stage == "log":
            self.progress.update(t, description=f"verifying: {event.detail}"[:80])
        else:
            self.progress.update(t, description=event.stage)


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        specs: list[Path] = typer.Argument(..., help="spec files (YAML), e.g. specs/addition.yaml", show_default=False),
        models: list[str] = typer.Option(
            None, "--models", "-m", help="model names (comma-separated), a glob over zoo names, or a folder of models; "
            "repeatable; default: the shipped zoo", show_default=False,
        ),
        out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="report folder"),
        jobs: int = typer.Option(
            None, "--jobs", "-j", help="models verified in parallel, one torch thread each; default: the usable CPU cores",
            show_default=False,
        ),
        executor: str = typer.Option("local", "--executor", help="local (processes) or ray (Ray tasks)"),
        seed: int = typer.Option(0, "--seed", help="seed of every random draw"),
        fresh: bool = typer.Option(False, "--fresh", help="ignore finished verdicts in OUT/verdicts and verify everything again"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
        labels: bool = typer.Option(
            False, "--labels", help="also label each model (cached, as `circuitspec label`) and name what the useful "
            "sites no node holds compute, in the node map, the gap report, report.json and the page",
        ),
    ) -> None:
        """Verify hypotheses on models; write report.json, junit.xml, SVGs and index.html to OUT.

        Exit code 0: all hold; 1: some fail or are inconclusive; 2: usage, spec or model error.
        Rerunning with the same inputs reuses finished verdicts (see --fresh); verdicts that other
        runs (same seed) left in OUT join the report; OUT in use by a running verify is an error.
        """
        from circuitspec.render.report import write_report
        from circuitspec.render.table import timing_table, verdict_table
        from circuitspec.verify.accuracy import accuracy_warnings
        from circuitspec.verify import orchestrate
        from circuitspec.verify.executors import make_executor

        from circuitspec.render.files import dot_available

        console = Console(stderr=True)
        ex = make_executor(executor, jobs=jobs)
        dot = dot_available()  # before any model work: the report is complete either way
        hyps = orchestrate.load_specs(specs)
        refs = orchestrate.resolve_models(models)
        with _Progress(console, enabled=not quiet) as progress:
            report, p = orchestrate.verify_many(
                hyps, refs, seed=seed, out=out, resume=not fresh, executor=ex, on_event=progress,
                finish=lambda r: write_report(r, out, dot=dot), labels=labels,
            )
        for name in p.unused_hypotheses():
            console.print(f"[yellow]note:[/] {name} applies to none of the selected models")
        table_console().print(verdict_table(report))
        print_gaps(table_console(), report.verdicts)
        if progress.seconds:  # Ray tasks send no progress events
            table_console().print(timing_table(progress.seconds, jobs=ex.jobs))
        for line in accuracy_warnings(report.verdicts):
            console.print(f"[yellow]warning:[/] {line}", highlight=False)
        asked = {(x.hypothesis, x.model) for x in p.pairs}
        mine = [v for v in report.verdicts if (v.hypothesis, v.model) in asked]
        earlier = f", {len(report.verdicts) - len(mine)} from earlier runs into this folder" if len(mine) < len(report.verdicts) else ""
        console.print(f"report: {out / 'index.html'}  ({len(report.verdicts)} verdicts, {len(p.cached)} reused{earlier})")
        if not dot:
            console.print("note: graphviz's 'dot' is not available, so graphs are drawn on the model grid only", highlight=False)
        raise typer.Exit(exit_code(v.status for v in mine))
