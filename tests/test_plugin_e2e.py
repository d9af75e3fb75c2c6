"""Acceptance: pytest on a separate test file that uses the plugin's fixtures, marker and assertions
on a shipped zoo model, with real verification. A true claim passes; a false one fails with the
expected message; two hypotheses on one model are verified in one pass (facts measured once).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Imported before pytester's in-process run, which drops the modules it sees imported
# (C extensions such as torch must not load twice).
import circuitspec.engine  # noqa: F401
import transformer_lens.config  # noqa: F401  (pulls in datasets/pyarrow, which cannot load twice)
import transformer_lens.model_bridge  # noqa: F401
import circuitspec.models.zoo  # noqa: F401
import circuitspec.render.report  # noqa: F401
import circuitspec.spec  # noqa: F401
import circuitspec.verify.core  # noqa: F401

pytest_plugins = ["pytester"]

SPECS = Path(__file__).resolve().parents[1] / "specs"
MODEL = "add_d5_l1_h3_t6K_s372001"
QUIET = ["-p", "no:hypothesispytest", "-p", "no:typeguard", "-p", "no:jaxtyping", "-p", "no:anyio", "-p", "no:cacheprovider"]

CLAIMS = f'''
import pytest
import torch
from circuitspec import assert_faithful, assert_holds, assert_node

torch.set_num_threads(1)
ONE_LAYER = {str(SPECS / "addition_1layer.yaml")!r}
WRONG = {str(SPECS / "negative_control.yaml")!r}


@pytest.mark.circuit(spec=ONE_LAYER, models="add_d5_l1_h3_t6K_*")
def test_true_claim(circuit_spec, circuit_target):
    node = assert_node(circuit_spec, circuit_target, "SA3")  # the hypothesis fails on its carry edges; its nodes hold
    assert node.status == "confirmed"


@pytest.mark.circuit(spec=WRONG, models="add_d5_l1_h3_t6K_*")
def test_false_claim(circuit_spec, circuit_target):
    assert_holds(circuit_spec, circuit_target)


def test_node_where_the_paper_puts_it(circuit_model):
    node = assert_node(ONE_LAYER, circuit_model("{MODEL}"), "SA2")
    assert all(".L0.H" in site for site in node.sites)


def test_faithful(circuit_model):
    assert_faithful(ONE_LAYER, circuit_model("{MODEL}"), at_least=0.8)


def test_zz_each_model_loaded_and_verified_once(circuit_cache):
    assert circuit_cache.loads == 1
    assert circuit_cache.verify_calls == 1  # both marked hypotheses in one verify_model call
'''


def test_true_claims_pass_and_a_false_claim_fails_with_its_evidence(pytester: pytest.Pytester, tmp_path: Path):
    pytester.makepyfile(test_claims=CLAIMS)
    out = tmp_path / "report"
    result = pytester.runpytest("-v", "--circuit-report", str(out), *QUIET)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_true_claim?add_d5_l1_h3_t*K_s372001? PASSED*",
            "*test_false_claim?add_d5_l1_h3_t*K_s372001? FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: circuit claim failed: negative_control holds in add_d5_l1_h3_t*K_s372001",
            "*hypothesis 'negative_control' on add_d5_l1_h3_t*K_s372001 (seed 0): fails, 0/5 required nodes confirmed*",
            "*failing nodes:",
            "*SA0 ?SA(0)?: not placed",
            "*reason: *interchange accuracy * on * pairs*(failed causal test)",
            "*measured:",
            "*faithfulness not measured",
            f"*report: {out / 'claims' / 'negative_control'}/add_d5_l1_h3_t*K_s372001/index.html",
        ]
    )
    result.stdout.fnmatch_lines(["circuitspec report (2 verdicts): *index.html"])
    report = json.loads((out / "report.json").read_text())
    assert sorted((v["hypothesis"], v["status"]) for v in report["verdicts"]) == [("addition_1layer", "fails"), ("negative_control", "fails")]
    assert (out / "index.html").is_file() and list((out / "graphs").rglob("*.svg"))
