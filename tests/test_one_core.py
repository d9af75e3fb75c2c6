"""One verify core: ``cs.verify_many``, ``circuitspec verify`` and a pytest session give the same report.

Real shipped models and real specs: the two 1-layer addition models, a hypothesis that holds
there, the paper's negative control, and the 2-layer cascade hypothesis (which does not apply to
1-layer models, so every front end leaves it out). Facts are measured once (on-disk cache) and
every front end reuses them; ``circuitspec scan`` reuses them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import circuitspec as cs
from circuitspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = [ROOT / "specs" / f for f in ("addition_1layer.yaml", "negative_control.yaml", "addition.yaml")]
MODELS = "add_d5_l1_h3_*"


@pytest.fixture(scope="module")
def facts_cache() -> Path:
    """The suite's facts cache ($CIRCUITSPEC_CACHE or the default): other tests' facts are reused."""
    from circuitspec.engine.cache import cache_dir

    return cache_dir().resolve()


@pytest.fixture(scope="module")
def api_report(tmp_path_factory, facts_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("api")
    report = cs.verify_many(SPECS, [MODELS], out=out)
    assert [(v.hypothesis, v.model) for v in report.verdicts] == [
        ("addition_1layer", "add_d5_l1_h3_t15K_s372001"),
        ("addition_1layer", "add_d5_l1_h3_t6K_s372001"),
        ("negative_control", "add_d5_l1_h3_t15K_s372001"),
        ("negative_control", "add_d5_l1_h3_t6K_s372001"),
    ]  # hypotheses in the order given, then models by name; 'addition' applies to neither
    return out / "report.json"


def test_cli_and_api_give_the_same_report(api_report: Path, facts_cache: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CIRCUITSPEC_CACHE", str(facts_cache))
    out = tmp_path / "cli"
    code = main(["verify", *map(str, SPECS), "--models", MODELS, "--out", str(out), "--quiet"])
    assert code == 1  # the negative control fails
    assert (out / "report.json").read_bytes() == api_report.read_bytes()


def test_pytest_session_gives_the_same_report(api_report: Path, facts_cache: Path, tmp_path: Path):
    tests = tmp_path / "test_claims.py"
    marks = "\n".join(
        f"@pytest.mark.circuit(spec={str(spec)!r}, models={MODELS!r})\n"
        f"def test_{spec.stem}(circuit_spec, circuit_target, circuit_cache):\n"
        f"    circuit_cache.verdict(circuit_spec, circuit_target)\n"
        for spec in SPECS
    )
    tests.write_text("import pytest\n\n" + marks)
    out = tmp_path / "session"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("CIRCUITSPEC_CACHE", None)  # the option, not the environment, names the cache
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), "--circuit-report", str(out),
         "--circuit-cache", str(facts_cache)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "6 passed" in run.stdout  # 3 specs x 2 models: 'addition' does not apply, so its verdicts are left out
    assert (out / "report.json").read_bytes() == api_report.read_bytes()


def test_scan_after_verify_is_a_cache_hit(api_report: Path, facts_cache: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CIRCUITSPEC_CACHE", str(facts_cache))
    capsys.readouterr()
    assert main(["scan", "add_d5_l1_h3_t6K_s372001", "--out", str(tmp_path / "facts.json"), "--threads", "1"]) == 0
    assert "facts from the cache" in capsys.readouterr().out
    facts = cs.scan("add_d5_l1_h3_t6K_s372001", cache_dir=facts_cache)
    assert facts.from_cache
