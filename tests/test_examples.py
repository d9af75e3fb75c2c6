"""Every example in examples/ runs: the tutorial as a script, the example test file under pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Imported before pytester's in-process run, which drops the modules it sees imported
# (C extensions such as torch must not load twice).
import circuitspec.engine  # noqa: F401
import transformer_lens.config  # noqa: F401  (pulls in datasets/pyarrow, which cannot load twice)
import transformer_lens.model_bridge  # noqa: F401
import circuitspec.models.zoo  # noqa: F401
import circuitspec.render.report  # noqa: F401
import circuitspec.spec  # noqa: F401
import circuitspec.strategies  # noqa: F401
import circuitspec.verify.core  # noqa: F401

pytest_plugins = ["pytester"]
torch.set_num_threads(1)  # the examples run in this process (pytester) or with OMP_NUM_THREADS=1

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
QUIET = ["-p", "no:hypothesispytest", "-p", "no:typeguard", "-p", "no:jaxtyping", "-p", "no:anyio", "-p", "no:cacheprovider"]


def test_every_example_is_covered():
    # reverse_task.py and train_reverse.py (the plug-in task) are covered by test_plugin_task.py
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == ["reverse_task.py", "test_addition_circuit.py", "train_reverse.py", "tutorial.py"]


def test_tutorial_runs(tmp_path: Path):
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "tutorial.py"), "--out", str(out)], capture_output=True, text=True, env=env, timeout=900
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "name: base-add" in run.stdout  # the hypothesis printed as YAML
    verdict_lines = [line for line in run.stdout.splitlines() if line.startswith("add_")]
    assert len(verdict_lines) == 2, run.stdout
    for name in ("index.html", "report.json", "junit.xml", "base-add-graph.svg", "base-add-nodemap.svg"):
        assert (out / name).is_file(), name
    assert (out / "base-add-graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_example_test_file_passes_under_the_plugin(pytester: pytest.Pytester):
    # "-n 0": in this process, not the project's xdist workers (pyproject's addopts), so -v prints one line per test
    result = pytester.runpytest(str(EXAMPLES / "test_addition_circuit.py"), "-v", "-n", "0", *QUIET)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_base_add_reaches_each_digit_through_the_mlp?add_d5_l1_h3_t*K_s372001? PASSED*"])
