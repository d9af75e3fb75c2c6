"""The `circuitspec` command: one typer app, one sub-command group per module.

Every front-end error a user can cause is a ``CircuitSpecError``: it is printed
without a traceback and the process exits 2.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from circuitspec.errors import CircuitSpecError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="circuitspec: state algorithm hypotheses about arithmetic transformers, find the heads, MLPs and "
    "neurons that implement them, and verify them causally.",
)

# (module under circuitspec.cli, group name or None for top-level commands)
_GROUPS = [
    ("task", "task"),
    ("spec", "spec"),
    ("zoo", "zoo"),
    ("verify", None),
    ("render", None),
    ("scan", None),
    ("label", None),
    ("suggest", None),
]

for _module, _name in _GROUPS:
    _sub = importlib.import_module(f"circuitspec.cli.{_module}")
    if _name is None:
        _sub.register(app)
    else:
        app.add_typer(_sub.app, name=_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # with standalone_mode=False, click returns a command's `typer.Exit(code)` instead of raising it
        code = app(args=argv, standalone_mode=False)
    except CircuitSpecError as err:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(err.render(code=True))}", highlight=False)
        return 2
    except typer.Exit as ex:
        return ex.exit_code
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True).print("aborted")
        return 130
    except Exception as ex:  # click usage errors (an unknown option, a bad value): exit 2, no traceback
        if isinstance(ex, _usage_errors()):
            ex.show()
            return ex.exit_code
        raise
    return code if isinstance(code, int) else 0


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage-error base class, and typer's vendored copy of it (typer 0.29 ships its own click)."""
    import click

    kinds: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as Vendored
    except ImportError:
        return tuple(kinds)
    return (*kinds, Vendored)


if __name__ == "__main__":
    sys.exit(main())
