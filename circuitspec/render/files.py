"""Writing report files: SVG through graphviz's ``dot``, and file-safe names (writes go through ``circuitspec.atomic``).

Kept free of torch so that re-rendering a saved report stays cheap.
"""

from __future__ import annotations

import re

import graphviz

from circuitspec.errors import CircuitSpecError


def svg(graph: graphviz.Digraph | graphviz.Graph | graphviz.Source) -> bytes:
    """Lay out ``graph`` with ``dot`` and return the SVG bytes (a clear error if dot is missing)."""
    try:
        return graph.pipe(format="svg", engine="dot")
    except graphviz.ExecutableNotFound:
        raise CircuitSpecError(
            "graphviz's 'dot' program was not found, so graphs cannot be drawn",
            hint="install graphviz (e.g. 'apt-get install graphviz' or 'brew install graphviz')",
        ) from None
    except graphviz.CalledProcessError as err:  # a bug in a renderer, not a user error
        raise RuntimeError(f"dot failed: {err.stderr.decode(errors='replace') if err.stderr else err}") from err


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def slug(name: str) -> str:
    """A file-name-safe version of a hypothesis or model name (stable, readable)."""
    s = _UNSAFE.sub("-", name).strip("-.")
    return s or "unnamed"
