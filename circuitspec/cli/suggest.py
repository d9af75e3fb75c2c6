"""``circuitspec suggest MODEL [--from SPEC] [--out FILE]``: propose a hypothesis from a model's labels.

Thin over ``verify.suggest``. Without ``--from``: a whole spec; with it: a unified diff that adds
what SPEC lacks (apply it with ``patch -p1`` or ``git apply``); SPEC itself is never written.
The result goes to stdout, or atomically to FILE.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def suggest(
    model: str = typer.Argument(..., help="a zoo model's name, a card / weights file or a model folder", show_default=False),
    from_spec: Path | None = typer.Option(None, "--from", help="propose only the nodes and edges this spec lacks, as a unified diff against it"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the spec (or the diff) here, atomically; default: stdout"),
    seed: int = typer.Option(0, "--seed", help="seed of the engine's reference set, the labels and every test"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="cache of facts and labels (default $CIRCUITSPEC_CACHE or ~/.cache/circuitspec)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute the facts and labels, neither read nor write the cache"),
) -> None:
    """Turn the model's labels (cached by `circuitspec label`) and the edges path patching confirms
    into a hypothesis YAML, every node and edge confirmed on the model."""
    from circuitspec.atomic import atomic_write
    from circuitspec.errors import VerifyError
    from circuitspec.verify.select import resolve_models
    from circuitspec.verify.suggest import suggest as propose

    if out is not None and from_spec is not None and out.resolve() == from_spec.resolve():
        raise VerifyError(f"--out {out} is the spec given to --from", hint="suggest never rewrites a spec: write the diff elsewhere and apply it")
    refs = resolve_models([model])
    if len(refs) != 1:
        raise VerifyError(f"suggest takes one model; {model!r} selects {len(refs)}", hint="name one model: " + ", ".join(r.name for r in refs[:4]))
    ref = refs[0]
    err = Console(stderr=True)
    with err.status(f"suggesting for {ref.name} ...") as status:
        def tell(stage: str, done: int, total: int) -> None:
            status.update(f"{ref.name}: labels, {stage} {done}/{total}")

        found = propose(ref.path, from_spec=from_spec, seed=seed, cache_dir=cache_dir, use_cache=not no_cache, progress=tell)
    if out is None:
        typer.echo(found.text, nl=False)
    else:
        atomic_write(out, found.text)
    where = f"written to {out}" if out is not None else "printed above"
    labels = "labels from the cache" if found.labels_from_cache else "labels measured"
    err.print(f"{found.model}: {len(found.nodes)} node(s), {len(found.edges)} edge(s) proposed, {len(found.dropped)} candidate node(s) "
              f"not confirmed, {len(found.unexplained)} useful site(s) unexplained ({labels}); {where}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest)
