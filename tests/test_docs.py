"""Documentation that runs: every docstring example of the package, and the README's Python snippets.

Doctests run from the repository root (examples read ``specs/...``). A README snippet is run as
a script, and each ``print(...)  # expected`` line must print what its comment says; a snippet
that defines a pytest test runs under pytest (with the plugin) and must pass.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import circuitspec

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = re.compile(r"```python\n(.*?)```", re.S)


def _modules() -> list[str]:
    names = ["circuitspec"]
    for m in pkgutil.walk_packages(circuitspec.__path__, "circuitspec."):
        if not m.name.endswith("__main__"):
            names.append(m.name)
    return names


def test_every_docstring_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    ran, failed = 0, []
    for name in _modules():
        module = importlib.import_module(name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
        ran += result.attempted
        if result.failed:
            failed.append(f"{name}: {result.failed} of {result.attempted}")
    assert not failed, failed
    assert ran >= 15  # the examples exist (errors, vocabulary, the public API, strategies)


def test_no_docstring_example_is_skipped():
    skipped = [n for n in _modules() if "doctest: +SKIP" in Path(importlib.import_module(n).__file__).read_text()]
    assert skipped == []


def _snippets() -> list[str]:
    return SNIPPET.findall((ROOT / "README.md").read_text())


def test_readme_has_python_snippets():
    assert len(_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_readme_python_snippet_runs(index: int, tmp_path: Path):
    code = _snippets()[index]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if "@pytest.mark" in code:
        path = tmp_path / "test_readme_snippet.py"
        path.write_text(code)
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                             capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert " passed" in run.stdout and " failed" not in run.stdout
        return
    run = subprocess.run([sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    expected = [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(") and "#" in line]
    printed = [line.strip() for line in run.stdout.splitlines()]
    if expected:
        assert printed[-len(expected):] == expected
