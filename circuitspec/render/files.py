"""Graphviz's ``dot`` as an optional extra, and file-safe names (writes go through ``circuitspec.atomic``).

Nothing in a report needs ``dot``: tables and the grid-style graph are written by this project.
Where ``dot`` works, a report also gets the graphviz layout of each graph. ``dot_available()``
asks the program itself (``dot -V``), so a missing, non-executable or broken ``dot`` on ``PATH``
reads as absent instead of failing later, after the model work.

Kept free of torch so that re-rendering a saved report stays cheap.
"""

from __future__ import annotations

import re
import subprocess

import graphviz

from circuitspec.errors import CircuitSpecError

DOT_HINT = "install graphviz (e.g. 'apt-get install graphviz' or 'brew install graphviz'), or write SVG or DOT source"


def dot_available(timeout: float = 10.0) -> bool:
    """Whether graphviz's ``dot`` on ``PATH`` runs and says it is graphviz (checked afresh on each call)."""
    try:
        done = subprocess.run(["dot", "-V"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):  # not found, not executable, not a program, hangs
        return False
    return done.returncode == 0 and b"graphviz" in (done.stdout + done.stderr).lower()


def dot_render(graph: graphviz.Digraph | graphviz.Graph | graphviz.Source, fmt: str = "svg") -> bytes:
    """Lay out ``graph`` with ``dot`` into ``fmt`` (a CircuitSpecError when ``dot`` is missing or broken)."""
    try:
        return graph.pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound:
        raise CircuitSpecError("graphviz's 'dot' program was not found", hint=DOT_HINT) from None
    except graphviz.CalledProcessError as err:
        stderr = err.stderr.decode(errors="replace").strip() if isinstance(err.stderr, bytes) else str(err.stderr or err)
        raise CircuitSpecError(f"graphviz's 'dot' failed: {stderr[:300]}", hint=DOT_HINT) from None
    except OSError as err:  # e.g. a 'dot' that is not executable
        raise CircuitSpecError(f"graphviz's 'dot' could not be run: {err.strerror or err}", hint=DOT_HINT) from None


def dot_svg(graph: graphviz.Digraph | graphviz.Graph | graphviz.Source) -> bytes:
    """SVG of ``graph`` laid out by ``dot``."""
    return dot_render(graph, "svg")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def slug(name: str) -> str:
    """A file-name-safe version of a hypothesis or model name (stable, readable)."""
    s = _UNSAFE.sub("-", name).strip("-.")
    return s or "unnamed"
