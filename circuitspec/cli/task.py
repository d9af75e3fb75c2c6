"""`circuitspec task ...`: look at the arithmetic task's questions and variables."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Questions, variables and classes of the arithmetic task.")

# Tri-case codes as the table shows them: none, uncertain, carry/borrow.
_TRI_CHARS = {"S": ".9C", "M": ".=B", "N": ".=B"}


@app.command()
def sample(
    op: str = typer.Option("add", help="add, sub or mix"),
    digits: int = typer.Option(6, help="digits per operand (1-20)"),
    cls: str = typer.Option(None, "--class", help="construct questions of this class (S0..S5, M0..M4, N1..N4)"),
    n: int = typer.Option(5, "-n", help="number of questions"),
    seed: int = typer.Option(0, help="seed of the generator"),
    enrich: bool = typer.Option(False, help="use the paper's training-data enrichment"),
    layout: str = typer.Option("paper", help="token layout: paper, reversed, nosign, unpadded or their combinations (reversed_nosign)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (variables indexed by column, units first)"),
) -> None:
    """Print questions in the paper's notation (as the layout writes them) with their class and key variables."""
    import torch

    from circuitspec.errors import TaskError
    from circuitspec.tasks.arithmetic import ArithmeticTask

    if n < 1:
        raise TaskError(f"-n must be at least 1, got {n}")
    task = ArithmeticTask(op, digits, layout)
    tokens = task.generate(n, torch.Generator().manual_seed(seed), cls=cls, enrich=enrich)
    texts = task.decode(tokens)
    names = [task.class_names[i] for i in task.classes(tokens).tolist()]
    values = {k: v.tolist() for k, v in task.all_variables(tokens).items()}

    if as_json:
        rows = [
            {"question": text, "class": name, "variables": {k: v[i] for k, v in values.items()}}
            for i, (text, name) in enumerate(zip(texts, names))
        ]
        typer.echo(json.dumps({"task": task.name, "seed": seed, "questions": rows}, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{task.name}, seed {seed}" + (f", class {cls}" if cls else ""))
    for header in ("question", "class", f"tricase {digits - 1}..0", f"cascade {digits - 1}..0"):
        table.add_column(header, no_wrap=True)
    for i, (text, name) in enumerate(zip(texts, names)):
        family = name[0]
        tri = "".join(_TRI_CHARS[family][t] for t in reversed(values[f"{family}T"][i]))
        cascade = "".join(str(c) for c in reversed(values[f"{family}V"][i]))
        table.add_row(text, name, f"{family}T {tri}", f"{family}V {cascade}")
    table.caption = "; ".join(_legend(f) for f in sorted({name[0] for name in names}, key="SMN".index))
    Console().print(table)


def _legend(family: str) -> str:
    chars = _TRI_CHARS[family]
    what = "carry" if family == "S" else "borrow"
    return f"{family}T: {chars[0]} no {what}, {chars[1]} uncertain, {chars[2]} {what}"
