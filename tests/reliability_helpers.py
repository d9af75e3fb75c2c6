"""Running the real `circuitspec` command in a subprocess and checking that it failed the way a user
error must: exit 2, one message that names the file (and the line, where the file has lines), no
traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_ENTRY = "import sys; from circuitspec.cli import main; sys.exit(main(sys.argv[1:]))"
_MEMORY_LIMIT = "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({0}, {0})); "


def run_cli(*args: str, cwd: str | os.PathLike | None = None, memory_bytes: int | None = None, timeout: float = 120):
    """``circuitspec ARGS`` as a child process (optionally under an address-space limit)."""
    code = (_MEMORY_LIMIT.format(memory_bytes) if memory_bytes else "") + _ENTRY
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def assert_user_error(proc, file: str | os.PathLike, line: int | None = None, *, says: str = "") -> str:
    """Exit 2, no traceback, exactly one ``error: FILE[:LINE...]: ...`` message; returns its text."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    assert out.count("error:") == 1, out
    text = " ".join(proc.stderr.split())  # rich wraps long lines
    where = re.escape(str(file)) + (f":{line}:" if line is not None else r"(:\d+)*:")
    assert re.search(r"error: " + where, text), text
    assert says in text, text
    return text
