"""On-disk cache of facts, keyed by everything they depend on.

The key hashes the model's weights, the task settings, the engine version, the engine's
seed and reference size, and the facts parameters: change any of them and the old entry
is simply never read again. Writes are atomic (temporary file + rename), so a crash or a
parallel writer never leaves a half-written entry; an unreadable entry is a miss.

Directory: the ``directory`` argument, else ``$CIRCUITSPEC_CACHE``, else
``~/.cache/circuitspec``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any
from circuitspec.atomic import atomic_write

log = logging.getLogger(__name__)


def cache_dir(directory: str | os.PathLike | None = None) -> Path:
    if directory is not None:
        return Path(directory).expanduser()
    env = os.environ.get("CIRCUITSPEC_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "circuitspec"


def task_settings(task: Any) -> dict[str, Any]:
    """What identifies a task for caching (its class, name and digit count / operation)."""
    return {
        "class": f"{type(task).__module__}.{type(task).__qualname__}",
        "name": str(getattr(task, "name", "")),
        "op": str(getattr(task, "op", "")),
        "digits": int(getattr(getattr(task, "layout", None), "digits", 0) or 0),
        "n_ctx": int(getattr(task, "n_ctx", 0) or 0),
    }


def make_key(kind: str, parts: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class JsonCache:
    """A folder of ``<prefix>-<key>.json`` entries; counts hits and misses."""

    def __init__(self, directory: str | os.PathLike | None = None, prefix: str = "facts") -> None:
        self.directory = cache_dir(directory)
        self.prefix = prefix
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.directory / f"{self.prefix}-{key[:40]}.json"

    def read(self, key: str) -> str | None:
        p = self.path(key)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError as err:
            log.warning("cannot read cache entry %s: %s", p, err)
            self.misses += 1
            return None
        self.hits += 1
        return text

    def write(self, key: str, text: str) -> Path:
        p = self.path(key)
        try:
            atomic_write(p, text)
        except OSError as err:  # a read-only cache must not break a scan
            log.warning("cannot write cache entry %s: %s", p, err)
        return p

    def forget(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass
