"""Writing report files: atomically (temp file + ``os.replace``) and SVG through graphviz's ``dot``.

Kept free of torch so that re-rendering a saved report stays cheap.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import graphviz

from circuitspec.errors import CircuitSpecError


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader (or a run killed midway) sees either the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
