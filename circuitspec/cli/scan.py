"""``circuitspec scan MODEL``: measure the facts of every site of a model and show the useful ones."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from circuitspec.atomic import atomic_write


def _fmt_share(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else "<0.1%"


def render_table(facts, *, all_sites: bool = False, labels=None):
    """A rich table of the (useful) sites and their facts; with ``labels`` (cached by ``circuitspec
    label``), what each site computes."""
    from rich.table import Table

    rows = facts.sites if all_sites else facts.useful()
    table = Table(
        title=f"{facts.model}: {len(facts.useful_sites)} useful sites at {len(facts.useful_positions)} positions "
        f"({facts.questions} questions, {facts.params.ablation} ablation)",
        title_justify="left",
    )
    for col, kw in [
        ("site", {"style": "bold"}),
        ("at", {}),
        ("fails", {"justify": "right"}),
        ("impacts", {}),
        ("classes failing", {}),
        ("attends to", {}),
        ("encodes (acc / chance)", {}),
    ] + ([("computes (label)", {})] if labels is not None else []):
        table.add_column(col, **kw)
    computes = {}
    if labels is not None:
        computes = {s.site: s.text for s in labels.sites}
    for f in rows:
        classes = ", ".join(f"{c} {_fmt_share(f.class_failure_rate[c])}" for c in f.failing_classes)
        attends = ", ".join(f"{a.label} {a.share:.0%}" for a in f.top_attention(2)) if f.kind == "head" else ""
        encodes = []
        for name, p in f.best_probes(2, margin=0.05):
            extra = f" [{p.clusters:.0%} clusters]" if p.clusters is not None and p.clusters_distinct else ""
            encodes.append(f"{name} {p.accuracy:.0%}/{p.chance:.0%}{extra}")
        extra = [computes.get(f.site, "")] if labels is not None else []
        table.add_row(f.site, f.position_label, _fmt_share(f.failure_rate), " ".join(f.impacts), classes, attends, ", ".join(encodes), *extra)
    return table


def scan(
    model: str = typer.Argument(..., help="a zoo model's name, a card / weights file or a model folder"),
    questions: int = typer.Option(500, "--questions", "-n", min=1, help="ablation questions (split over the classes)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON file for the facts (default: MODEL.facts.json)"),
    seed: int = typer.Option(0, "--seed", help="seed of the engine's reference set and of the question draws"),
    probe_questions: int = typer.Option(
        0, "--probe-questions", min=0, help="questions for the variable probes, e.g. 1200 (0: none, the facts verify measures and caches)"
    ),
    ablation: str = typer.Option("mean", "--ablation", help="mean, zero or resample"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="facts cache (default $CIRCUITSPEC_CACHE or ~/.cache/circuitspec)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute, neither read nor write the cache"),
    show_all: bool = typer.Option(False, "--all", help="show every site, not only the useful ones"),
    threads: int = typer.Option(
        1, "--threads", help="torch CPU threads (0: torch's default, one per core, which is slower when the cores are busy)"
    ),
) -> None:
    """Ablate every head and MLP at every position; print the useful sites with their facts.

    By default it measures what ``circuitspec verify`` measures (and reuses its cached facts);
    --probe-questions adds what each site's output encodes.
    """
    import torch

    from circuitspec.engine.cache import JsonCache
    from circuitspec.engine.facts import FactsParams, load_or_compute
    from circuitspec.engine.runner import Engine
    from circuitspec.errors import EngineError
    from circuitspec.models import load

    if threads:
        torch.set_num_threads(threads)
    if ablation not in ("mean", "zero", "resample"):
        from circuitspec.errors import unknown

        raise unknown("ablation", ablation, ("mean", "zero", "resample"), EngineError)
    console = Console()
    loaded = load(model)
    engine = Engine(loaded, seed=seed)
    probes = {"probe_questions": probe_questions, "tricase_per_case": FactsParams().tricase_per_case} if probe_questions else {}
    params = FactsParams.preset(seed, questions=questions, ablation=ablation, **probes)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        bars: dict[str, int] = {}

        def tell(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        facts = load_or_compute(engine, params, cache=JsonCache(cache_dir), use_cache=not no_cache, progress=tell)
    from circuitspec.verify.labels import cached

    labels = cached(engine, cache_dir=cache_dir) if not no_cache and params == FactsParams.preset(seed) else None
    from circuitspec.cli.output import table_console

    table_console().print(render_table(facts, all_sites=show_all, labels=labels))
    name = getattr(getattr(loaded, "card", None), "short_name", None) or facts.model
    path = out or Path(f"{name}.facts.json")
    atomic_write(path, facts.to_json())
    source = "from the cache" if facts.from_cache else "measured"
    told = "; labels from `circuitspec label`" if labels is not None else ""
    console.print(f"facts {source}{told}; useful positions {facts.useful_positions}; written to {path}")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
