"""``circuitspec label MODEL...``: name what every useful site of a model computes.

Thin over ``verify.labels`` (cached with the facts) and ``render.labels`` (table, map, page).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

DEFAULT_OUT = Path("circuitspec-labels")


def label(
    models: list[str] = typer.Argument(..., help="zoo model names, globs over them, card files or model folders", show_default=False),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="folder for MODEL.labels.json, MODEL.labels.svg and index.html"),
    seed: int = typer.Option(0, "--seed", help="seed of the engine's reference set, the facts and the pairs"),
    pairs: int = typer.Option(256, "--pairs", help="counterfactual pairs per variable instance"),
    min_accuracy: float = typer.Option(0.9, "--min-accuracy", help="interchange accuracy a label needs"),
    max_heads: int = typer.Option(2, "--max-heads", help="co-located heads tested jointly (1: none)"),
    neurons: bool = typer.Option(
        False, "--neurons/--no-neurons", help="also find each labelled MLP's smallest attribution-ranked neuron set "
        "(minutes on a trained model: exact tests prune the set one neuron at a time)"
    ),
    jobs: int = typer.Option(None, "--jobs", "-j", help="models labelled in parallel, one torch thread each; default: the usable CPU cores", show_default=False),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="cache of facts and labels (default $CIRCUITSPEC_CACHE or ~/.cache/circuitspec)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute, neither read nor write the cache"),
) -> None:
    """Interchange-test every variable each useful site could carry; print one line per site and
    write the labels (JSON), the labelled node map (SVG) and a page (index.html) to OUT."""
    from circuitspec.cli.output import table_console
    from circuitspec.render.labels import table_lines, write_labels
    from circuitspec.verify.labels import LabelItem, check_jobs, label_many, params_from
    from circuitspec.verify.select import resolve_models

    params = params_from(seed=seed, pairs=pairs, min_accuracy=min_accuracy, max_heads=max_heads, neurons=neurons)
    workers = check_jobs(jobs)
    refs = resolve_models(models)
    cache = str(cache_dir) if cache_dir is not None else None
    items = [LabelItem(model=ref.path, seed=seed, params=params, cache_dir=cache, use_cache=not no_cache) for ref in refs]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bars:
        tasks: dict[str, int] = {}

        def tell(event) -> None:
            model, stage, done, total = event
            if model not in tasks:
                tasks[model] = bars.add_task(Path(model).stem, total=total)
            bars.update(tasks[model], description=f"{Path(model).stem}: {stage}", completed=done, total=total)

        results = label_many(items, jobs=workers, on_event=tell)
    console = table_console()
    for labels, from_cache in results:
        for line in table_lines(labels):
            console.print(line, highlight=False, markup=False)
        console.print(f"({'from the cache' if from_cache else 'measured'})\n", highlight=False)
    write_labels([lab for lab, _ in results], out)
    Console(stderr=True).print(f"labels: {out / 'index.html'}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
