"""A report folder's state: finished verdicts, their index, and the lock of the run writing it.

``<out>/verdicts/<key>.json`` holds each finished verdict (written atomically) and
``<out>/verdicts/index.jsonl`` records, per key, the pair, seed and circuitspec version it
belongs to, in the order they were written. The folder is the source of truth: a run's report
holds its own verdicts and every other verdict in the folder of the same seed and version (the
latest one per pair), so two runs with different specs into one folder give one report of both.

Two runs writing one folder at the same time would race on report.json; ``lock`` refuses the
second with a clear message (a lock left by a process that no longer runs is taken over).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydantic

from circuitspec.atomic import atomic_write
from circuitspec.errors import VerifyError
from circuitspec.verify.verdict import Verdict

log = logging.getLogger(__name__)

VERDICTS_DIR = "verdicts"
INDEX_FILE = "index.jsonl"  # not *.json: the folder's *.json files are the verdicts
LOCK_FILE = ".circuitspec-run.lock"


def verdict_path(out: str | os.PathLike, key: str) -> Path:
    return Path(out) / VERDICTS_DIR / f"{key}.json"


def read_verdict(path: Path, hypothesis: str, model: str) -> Verdict | None:
    """The finished verdict at ``path`` if it is readable and about this pair (else None, logged)."""
    try:
        v = Verdict.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, pydantic.ValidationError) as err:
        log.warning("ignoring unreadable cached verdict %s: %s", path, err)
        return None
    if (v.hypothesis, v.model) != (hypothesis, model):
        log.warning("ignoring cached verdict %s: it is for %s on %s", path, v.hypothesis, v.model)
        return None
    return v


def _index(out: Path) -> list[dict]:
    try:
        lines = (out / VERDICTS_DIR / INDEX_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    except OSError as err:
        log.warning("ignoring unreadable verdict index in %s: %s", out, err)
        return []
    entries = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and {"key", "hypothesis", "model", "seed", "version"} <= set(e):
            entries.append(e)
    return entries


def save(out: str | os.PathLike, key: str, verdict: Verdict, version: str) -> None:
    """Write one finished verdict and record it in the folder's index (the caller holds the lock)."""
    out = Path(out)
    atomic_write(verdict_path(out, key), (verdict.to_json() + "\n").encode())
    entry = {"key": key, "hypothesis": verdict.hypothesis, "model": verdict.model, "seed": verdict.seed, "version": version}
    entries = [e for e in _index(out) if e["key"] != key] + [entry]
    atomic_write(out / VERDICTS_DIR / INDEX_FILE, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def others(out: str | os.PathLike, mine: set[tuple[str, str]], seed: int, version: str) -> dict[tuple[str, str], Verdict]:
    """Verdicts of earlier runs into ``out`` (same seed and version) for pairs outside ``mine``."""
    out = Path(out)
    latest: dict[tuple[str, str], str] = {}
    for e in _index(out):
        pair = (e["hypothesis"], e["model"])
        if pair not in mine and e["seed"] == seed and e["version"] == version:
            latest[pair] = e["key"]  # later entries were written later
    found = {}
    for pair, key in latest.items():
        v = read_verdict(verdict_path(out, key), *pair)
        if v is not None:
            found[pair] = v
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextmanager
def lock(out: str | os.PathLike) -> Iterator[None]:
    """Hold ``out`` for this run; a folder another running process holds is a ``VerifyError``."""
    path = Path(out) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise VerifyError(
                    f"the report folder is in use by another verify run (process {pid})",
                    file=str(out),
                    hint="wait for it to finish, or pass another --out",
                ) from None
            path.unlink(missing_ok=True)  # left by a run that no longer exists
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
