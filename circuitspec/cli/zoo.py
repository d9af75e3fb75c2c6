"""`circuitspec zoo ...`: list, train, evaluate, import and export models."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from circuitspec.cli.output import table_console
from circuitspec.models.card import ARCH_HELP

app = typer.Typer(no_args_is_help=True, help="The model zoo: list, train, evaluate, import and export models.")


def _fmt_fpm(results) -> str:
    u = results.uniform
    return f"{u.failures_per_million:,.1f} [{u.interval.low:,.1f}, {u.interval.high:,.1f}]"


@app.command("list")
def list_models(
    folder: Path = typer.Option(None, "--folder", help="a folder of models (default: the shipped zoo)"),
    markdown: bool = typer.Option(False, "--markdown", help="print a Markdown table with each model's reproduce command (the README's)"),
) -> None:
    """Table of models with shape and accuracy."""
    from circuitspec.models.zoo import list_zoo

    cards = list_zoo(folder)
    if markdown:
        print(_markdown_table(cards))
        return
    table = Table(title=f"{len(cards)} models" + (f" in {folder}" if folder else " in the shipped zoo"))
    table.add_column("name", no_wrap=True)
    for col in ("shape", "steps", "fails/M [95% CI]", "questions", "worst class", "families failed"):
        table.add_column(col, justify="left" if col in ("shape", "worst class", "families failed") else "right")
    for c in cards:
        a, r = c.architecture, c.results
        table.add_row(
            c.name, f"{c.task.op} d{c.task.digits} L{a.n_layers} H{a.n_heads} w{a.d_model}",
            f"{c.recipe.steps:,}" if c.recipe else "-",
            _fmt_fpm(r) if r else "not measured",
            f"{r.questions:,}" if r else "-",
            _worst_class(r),
            _families_text(r),
        )
    table_console().print(table)


def _worst_class(results) -> str:
    if not results or not results.per_class:
        return ""
    cls = min(results.per_class, key=lambda k: results.per_class[k].accuracy)
    if results.per_class[cls].failures == 0:
        return "none failed"
    return f"{cls} {100 * results.per_class[cls].accuracy:.2f}%"


def _markdown_table(cards) -> str:
    lines = [
        "| model | failures per million [95% CI] (questions) | worst class | families failed (failures/questions) | search | reproduce |",
        "|---|---|---|---|---|---|",
    ]
    for c in cards:
        r = c.results
        measured = f"{_fmt_fpm(r)} ({r.questions:,})" if r else "not measured"
        command = f"`{c.recipe.command}`" if c.recipe else "-"
        search = f"{r.search.failures}/{r.search.questions:,}" if r and r.search else "-"
        lines.append(f"| {c.name} | {measured} | {_worst_class(r) or '-'} | {_families_text(r)} | {search} | {command} |")
    return "\n".join(lines)


def _families_text(results) -> str:
    """``none of 6`` or the failing families, ``cascade 2/12,040, sparse 1/3,025``."""
    if not results or not results.families:
        return "not measured"
    bad = [f"{n} {f.failures:,}/{f.questions:,}" for n, f in results.families.items() if f.failures]
    return ", ".join(bad) if bad else f"none of {len(results.families)}"


@app.command("train")
def train_model(
    name: str = typer.Argument(..., help="[ins1_]{add|sub|mix}[_rev]_d{digits}_l{layers}_h{heads}[_t{K}K]_s{seed}"),
    steps: int = typer.Option(None, "--steps", help="training steps (default: from the name's _tNK)"),
    width: int = typer.Option(128, "--width", help="d_model; d_mlp = 4 * width"),
    d_head: int = typer.Option(None, "--d-head", help="default: width / 4"),
    lr: float = typer.Option(1e-3, "--lr"),
    device: str = typer.Option("cpu", "--device"),
    threads: int = typer.Option(1, "--threads", help="torch threads (0: torch's default)"),
    init_from: str = typer.Option(None, "--init-from", help="ins1 models: the addition model to start from"),
    out: Path = typer.Option(Path("runs/zoo"), "--out", help="folder to write NAME.safetensors + NAME.json"),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every", help="steps between checkpoints (0: none)"),
    questions: int = typer.Option(1_000_000, "--questions", help="uniform test questions after training"),
    per_class: int = typer.Option(10_000, "--per-class", help="class-stratified test questions per class"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing model of that name in --out"),
    hard_fraction: float = typer.Option(0.0, "--hard-fraction", help="share of each batch drawn from sparse and cascade questions"),
    arch: str = typer.Option("", "--arch", help="architecture outside the zoo's LN / standard / relu family, " + ARCH_HELP),
) -> None:
    """Train a model by name, measure it and save it (rerun the same command to resume after an interruption)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from circuitspec.errors import ModelError
    from circuitspec.models.evaluate import measure
    from circuitspec.models.store import paths_for
    from circuitspec.models.training import plan, train
    from circuitspec.models.zoo import load, save

    import torch

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)  # evaluation too, not just training
    card = plan(
        name, steps=steps, width=width, d_head=d_head, lr=lr, device=device, threads=threads or None,
        init_from=init_from, checkpoint_every=checkpoint_every or None, hard_fraction=hard_fraction, arch=arch,
    )
    if not force and any(p.exists() for p in paths_for(out, card.name)):
        raise ModelError(f"model {card.name!r} already exists in {out}", file=str(out), hint="pass --force to overwrite, or choose --out")
    init = load(init_from) if init_from else None
    interactive = sys.stderr.isatty()
    every = max(1, card.recipe.steps // 50)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not interactive,
    ) as bar:
        job = bar.add_task(card.name, total=card.recipe.steps, loss="-")
        t0 = time.perf_counter()

        def on_step(info) -> None:
            bar.update(job, completed=info.step, loss=f"{info.loss:.3g}")
            if not interactive and (info.step % every == 0 or info.step == info.steps):
                console.print(f"{card.name} step {info.step}/{info.steps} loss {info.loss:.4g} lr {info.lr:.3g} {time.perf_counter() - t0:.0f}s", highlight=False)

        trained = train(card, init=init, checkpoint_dir=out / ".checkpoints", callback=on_step)
        model = trained.model
        evaluation = bar.add_task("evaluating", total=None, loss=f"{trained.final_loss:.3g}")
        results = measure(model, questions, per_class, final_loss=trained.final_loss, progress=lambda d, t: bar.update(evaluation, completed=d, total=t))
    model.card = model.card.model_copy(update={"results": results})
    path = save(model, out, overwrite=force)
    console.print(f"saved {path} ({trained.seconds:.0f}s training, {results.eval_seconds:.0f}s evaluation)", highlight=False)
    _print_results(model.card)


def _print_results(card, console: Console | None = None) -> None:
    console = console or Console()
    r = card.results
    table = Table(title=card.name)
    table.add_column("measure")
    table.add_column("value", justify="right")
    if r.final_loss is not None:
        table.add_row("final training loss", f"{r.final_loss:.3g}")
    table.add_row(f"fails/M on {r.questions:,} uniform questions", f"{r.failures} -> {_fmt_fpm(r)}")
    for op, u in r.per_op.items():
        table.add_row(f"  {op} ({u.questions:,})", f"{u.failures} -> {u.failures_per_million:,.1f} [{u.interval.low:,.1f}, {u.interval.high:,.1f}]")
    for cls, c in r.per_class.items():
        table.add_row(f"class {cls} ({c.questions:,})", f"{100 * c.accuracy:.3f}%")
    for fam, f in r.families.items():
        kind = "all" if f.exhaustive else "sampled"
        classes = ", ".join(f"{k} {v}" for k, v in f.failed_classes.items())
        table.add_row(
            f"family {fam} ({f.questions:,} {kind})",
            f"{f.failures} -> {f.failures * 1e6 / f.questions:,.1f} [{f.interval.low:,.1f}, {f.interval.high:,.1f}]" + (f" ({classes})" if classes else ""),
        )
    if r.search is not None:
        table.add_row(f"search ({r.search.questions:,} structured)", f"{r.search.failures} failed")
    console.print(table)
    for fam, f in r.families.items():
        for example in f.examples:
            console.print(f"  {fam}: {example}", highlight=False)
    if r.search is not None:
        for text, count in zip(r.search.shrunk, r.search.shrunk_from):
            console.print(f"  shrunk ({count} failure{'s' if count > 1 else ''}): {text}", highlight=False)


@app.command("eval")
def eval_model(
    name: str = typer.Argument(..., help="a zoo name (with or without _tNK) or a model path"),
    questions: int = typer.Option(1_000_000, "--questions", "-n", help="uniform questions (0: keep the card's figure)"),
    per_class: int = typer.Option(10_000, "--per-class", help="class-stratified questions per class (0: keep the card's)"),
    seed: int = typer.Option(None, "--seed", help="question seed (default: the card's, so the figure is reproduced)"),
    families: bool = typer.Option(True, "--families/--no-families", help="measure the hard-question families"),
    family_size: int = typer.Option(None, "--family-size", help="questions per sampled family (default: the card's, else 20,000)"),
    search_n: int = typer.Option(0, "--search", help="also search this many structured questions for failures and shrink each"),
    folder: Path = typer.Option(None, "--folder", help="look NAME up in this folder instead of the shipped zoo"),
    jobs: int = typer.Option(
        None, "--jobs", "-j", help="worker processes answering the questions; default: the usable CPU cores", show_default=False
    ),
    threads: int = typer.Option(1, "--threads", help="torch threads per worker process (0: torch's default)"),
    update: bool = typer.Option(False, "--update", help="write the new measurement into the model's card (weights untouched)"),
) -> None:
    """Measure a model again and compare with its card (exit 1 when outside the card's interval).

    Also prints each hard-question family (count, failures, 95% CI) and, with ``--search
    N``, the simplest forms of the failures a structured search finds.
    """
    import torch

    from circuitspec.models.evaluate import DEFAULT_SEED, measure
    from circuitspec.models.zoo import load
    from circuitspec.verify.executors import LocalExecutor

    executor = LocalExecutor(jobs)
    if threads:
        torch.set_num_threads(threads)
    model = load(name, folder=folder)
    predict = _answers(model, executor, threads)
    old = model.card.results
    if not questions and old is None:
        from circuitspec.errors import ModelError

        raise ModelError(f"{model.name} has no measured uniform accuracy to keep", hint="pass --questions N")
    seed = seed if seed is not None else (old.uniform.seed if old else DEFAULT_SEED)
    size = family_size or _card_family_size(old)
    new = measure(model, questions, per_class, seed, family_size=size if families else 0, search=search_n, predict=predict) if questions else None
    new = _merge(old, new, model, per_class, size if families else 0, search_n, predict)
    if old is not None and old.final_loss is not None:
        new = new.model_copy(update={"final_loss": old.final_loss})
    shown = model.card.model_copy(update={"results": new})
    _print_results(shown)
    if update:
        from circuitspec.models.store import atomic_write

        atomic_write(model.path, shown.to_json().encode())
        Console().print(f"updated {model.path}")
        return
    if old is None or not questions:
        return
    ok = consistent(old, new)
    Console().print(
        f"card: {_fmt_fpm(old)} on {old.questions:,}; now: {_fmt_fpm(new)} on {new.questions:,}: "
        + ("[green]consistent[/]" if ok else "[red]inconsistent[/]")
    )
    if not ok:
        raise typer.Exit(1)


def _answers(model, executor, threads: int):
    """Who answers the questions: ``executor``'s worker processes (each loads the model once and
    runs ``threads`` torch threads), or this process with one job. The figures are the same."""
    from circuitspec.models.evaluate import answer_batch, in_process

    if executor.jobs == 1 or model.path is None:
        return in_process(model)
    path = str(model.path)
    return lambda batches: executor.run(answer_batch, [(path, threads, tokens) for tokens in batches])


def _card_family_size(results) -> int:
    from circuitspec.tasks.families import DEFAULT_SIZE

    sizes = {f.size for f in results.families.values()} if results else set()
    return sizes.pop() if len(sizes) == 1 else DEFAULT_SIZE


def _merge(old, new, model, per_class: int, family_size: int, search_n: int, predict=None):
    """Results with what was measured now and, for what was skipped (``-n 0``, ``--per-class 0``), the card's."""
    from circuitspec.models.families import family_failures
    from circuitspec.models.search import search

    if new is None:
        update = {}
        if per_class:
            from circuitspec.models.evaluate import class_accuracy

            update["per_class"] = class_accuracy(model, per_class, old.class_seed or 0, predict=predict)
        if family_size:
            update["families"] = family_failures(model, family_size, predict=predict)
        if search_n:
            update["search"] = search(model, search_n)
        return old.model_copy(update=update)
    keep = {}
    if old is not None and not per_class:
        keep.update(per_class=old.per_class, class_seed=old.class_seed)
    if old is not None and not family_size:
        keep["families"] = old.families
    if old is not None and not search_n:
        keep["search"] = old.search
    return new.model_copy(update=keep)


def consistent(card_results, new_results) -> bool:
    """Do two measurements agree: each one's 95% interval contains the other's point estimate, or the intervals overlap."""
    a, b = card_results.uniform, new_results.uniform
    return a.interval.low <= b.interval.high and b.interval.low <= a.interval.high


@app.command("export")
def export_model(name: str = typer.Argument(...), out: Path = typer.Argument(..., help="file to write (.pth)")) -> None:
    """Write a model as a TransformerLens-format state dict (W_Q [n_heads, d_model, d_head] ...)."""
    from circuitspec.models.zoo import export_pth, load

    Console().print(f"wrote {export_pth(load(name), out)}")


@app.command("import")
def import_model(
    pth: Path = typer.Argument(..., help="TransformerLens state dict (.pth)"),
    op: str = typer.Option(..., "--op", help="add, sub or mix (weights do not say)"),
    name: str = typer.Option(None, "--name", help="model name (default: the file's stem)"),
    out: Path = typer.Option(Path("runs/zoo"), "--out"),
    questions: int = typer.Option(100_000, "--questions", help="uniform questions to measure it on (0: skip)"),
    per_class: int = typer.Option(1_000, "--per-class"),
    act_fn: str = typer.Option("relu", "--act-fn", help="the MLP's activation: relu, gelu, gelu_new or silu (weights do not say)"),
    normalization: str = typer.Option(
        None, "--normalization", help="LNPre for a checkpoint without norm weights that normalizes (else: none); LN and RMS are read from the weights"
    ),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Import a TransformerLens checkpoint (e.g. the paper's), measure it and save it with a card.
    What the weights cannot fit (a gated MLP, grouped-query attention, ...) is refused with the reason."""
    from circuitspec.errors import ModelError, unknown
    from circuitspec.models.card import ACT_FNS, NORMALIZATIONS
    from circuitspec.models.evaluate import measure
    from circuitspec.models.zoo import import_pth, save

    if act_fn not in ACT_FNS:
        raise unknown("activation function", act_fn, ACT_FNS, ModelError)
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise unknown("normalization", normalization, [n for n in NORMALIZATIONS if n], ModelError)
    model = import_pth(pth, op, name=name, act_fn=act_fn, normalization=normalization)
    if questions:
        model.card = model.card.model_copy(update={"results": measure(model, questions, per_class)})
    path = save(model, out, overwrite=force)
    Console().print(f"saved {path}")
    if model.card.results:
        _print_results(model.card)
