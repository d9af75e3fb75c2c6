"""`circuitspec spec ...`: validate, expand and draw hypothesis files; print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from circuitspec.cli.output import table_console
from rich.markup import escape
from rich.table import Table

from circuitspec.errors import CircuitSpecError, SpecError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Hypothesis files: check, draw, JSON Schema.")

OpOpt = Annotated[str | None, typer.Option("--op", help="model operation: add, sub or mix (default: the spec's)")]
DigitsOpt = Annotated[int | None, typer.Option("--digits", help="digits per operand (default 6, within applies_to)")]
LayersOpt = Annotated[int | None, typer.Option("--layers", help="layers (default 2, within applies_to)")]
HeadsOpt = Annotated[int | None, typer.Option("--heads", help="heads per layer (default 3, within applies_to)")]
LayoutOpt = Annotated[str | None, typer.Option("--layout", help="token layout: paper (default), reversed, nosign, unpadded or their combinations")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="take the shape from this model's card (zoo name or path)")]
IncludeRootOpt = Annotated[
    Path | None, typer.Option("--include-root", help="folder that includes may reach (default: each spec's own folder)")
]


def _model_shape(name: str):
    """The shape on a model's card (``circuitspec.models.load(name).card``)."""
    try:
        from circuitspec import models
    except ImportError as err:  # pragma: no cover - the models package ships with circuitspec
        raise SpecError(f"--model needs circuitspec.models, which cannot be imported: {err}") from None
    return models.load(name).card.shape


def _shape_for(h, op, digits, layers, heads, model, layout=None):
    from circuitspec.spec import default_shape

    if model is not None:
        if any(v is not None for v in (op, digits, layers, heads, layout)):
            raise SpecError("give either --model or --op/--digits/--layers/--heads/--layout, not both")
        return _model_shape(model), f"model {model}"
    shape = default_shape(h, op=op, digits=digits, n_layers=layers, n_heads=heads, layout=layout)
    given = any(v is not None for v in (op, digits, layers, heads, layout))
    return shape, "options" if given else "defaults"


def _behaviour(inst, layout) -> str:
    parts = []
    for positions, share in inst.attends:
        parts.append("attends " + "+".join(layout.label(p) for p in positions) + f">={share:g}")
    if inst.impacts_exactly is not None:
        parts.append("impacts =" + ",".join(inst.impacts_exactly))
    if inst.impacts_at_least:
        parts.append("impacts >=" + ",".join(inst.impacts_at_least))
    if inst.breaks:
        parts.append("breaks " + ",".join(inst.breaks))
    if inst.spares:
        parts.append("spares " + ",".join(inst.spares))
    return "; ".join(parts)


MAX_TABLE_ROWS = 500  # beyond this a table is unreadable, and rich takes seconds per thousand rows


def _table(graph, title: str) -> Table:
    from circuitspec.spec.instance import instances, span_text

    shape = graph.graph["shape"]
    from circuitspec.tasks.registry import vocabulary

    layout = vocabulary(shape.op).layout(shape.digits, shape.layout)
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False, box=None)
    for col in ("node", "computes", "site", "at", "layers", "behaviour", "test", "feeds"):
        table.add_column(col, overflow="fold")
    for inst in instances(graph)[:MAX_TABLE_ROWS]:
        site = f"{inst.site} spread" if inst.spread else inst.site if inst.max_heads == 1 else f"{inst.site}x{inst.max_heads}"
        at = "any" if inst.positions == list(range(shape.n_ctx)) else span_text(inst.positions, "P")
        layers = "any" if inst.layers == list(range(shape.n_layers)) else span_text(inst.layers)
        test = f"{inst.min_accuracy:g}/{inst.n_pairs}"
        if inst.keep:
            test += " keep " + ",".join(f"{n}{'' if k is None else k}" for n, k in inst.keep)
        if inst.test_answers is not None:
            test += " on " + ",".join(inst.test_answers)
        node = inst.id if inst.required else f"{inst.id}?"
        table.add_row(
            node, escape(inst.variable_text), site, at, layers, escape(_behaviour(inst, layout)), test,
            escape(",".join(graph.successors(inst.id))),
        )  # fmt: skip
    return table


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="spec files (YAML)")],
    op: OpOpt = None,
    digits: DigitsOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    layout: LayoutOpt = None,
    model: ModelOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="one line per file, no table")] = False,
    include_root: IncludeRootOpt = None,
) -> None:
    """Validate spec files, expand them for a model shape and print the concrete nodes."""
    from circuitspec.spec import expand, load, shape_text

    console = table_console()
    errors = Console(stderr=True)
    failed: list[CircuitSpecError] = []
    for path in files:
        try:
            h = load(path, include_root=include_root)
            shape, source = _shape_for(h, op, digits, layers, heads, model, layout)
            graph = expand(h, shape)
        except CircuitSpecError as err:
            failed.append(err)
            if len(files) > 1:
                errors.print(f"[bold red]error:[/] {escape(err.render(code=True))}", highlight=False)
            continue
        n_nodes, n_edges = graph.number_of_nodes(), graph.number_of_edges()
        summary = f"{path}: {h.name} is valid; {shape_text(shape)} ({source}): {n_nodes} nodes, {n_edges} edges"
        if quiet:
            console.print(escape(summary), highlight=False)
        else:
            console.print(_table(graph, escape(summary)))
            if n_nodes > MAX_TABLE_ROWS:
                console.print(f"... and {n_nodes - MAX_TABLE_ROWS:,} more nodes (the table shows the first {MAX_TABLE_ROWS})")
            console.print("[dim]test: min accuracy/pairs (keep: variables held; on: the answers compared); ? optional node; P: token position; impacts =: exactly[/]")
    if failed:
        if len(files) == 1:
            raise failed[0]
        raise SpecError(f"{len(failed)} of {len(files)} spec files did not check (see above)")


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file instead of stdout")] = None,
) -> None:
    """Print the JSON Schema of spec files (point your editor's YAML plugin at it)."""
    from circuitspec.spec import Hypothesis

    text = json.dumps(Hypothesis.json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write(output, text)


def _write(path: Path, data: str) -> None:
    """Atomically, as a ``CircuitSpecError`` when the folder cannot take the file."""
    from circuitspec.atomic import atomic_write

    try:
        atomic_write(path, data)
    except OSError as err:
        raise _cannot_write(path, err) from None


def _cannot_write(path: Path, err: OSError) -> CircuitSpecError:
    return CircuitSpecError(f"cannot write the file: {err.strerror or err}", file=str(path))


@app.command()
def render(
    file: Annotated[Path, typer.Argument(help="spec file (YAML)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output file (default: NAME.FORMAT here)")] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="svg, png or dot (default: from -o, else svg)")] = None,
    op: OpOpt = None,
    digits: DigitsOpt = None,
    layers: LayersOpt = None,
    heads: HeadsOpt = None,
    layout: LayoutOpt = None,
    model: ModelOpt = None,
    style: Annotated[str, typer.Option("--style", help="svg: grid (on the model's positions and layers) or dot (graphviz layout)")] = "grid",
    include_root: IncludeRootOpt = None,
) -> None:
    """Draw the expanded hypothesis graph (SVG on the model's grid; PNG and --style dot need graphviz's dot)."""
    from circuitspec.render.hypothesis import FORMATS, write_graph
    from circuitspec.spec import expand, load

    if format is not None and format.lower() not in FORMATS:
        raise CircuitSpecError(f"unknown format {format!r}", hint="allowed: " + ", ".join(FORMATS))
    h = load(file, include_root=include_root)
    shape, _ = _shape_for(h, op, digits, layers, heads, model, layout)
    graph = expand(h, shape)
    fmt = (format or (output.suffix.lstrip(".") if output is not None and output.suffix else "svg")).lower()
    if output is None:
        output = Path(f"{file.stem}.{fmt}")
    try:
        written = write_graph(graph, output, format=fmt, style=style)
    except OSError as err:
        raise _cannot_write(output, err) from None
    Console().print(f"wrote {escape(str(written))}", highlight=False)
