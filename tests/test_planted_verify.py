"""The matcher against ground truth: ``verify`` on planted circuits finds exactly the planted sites.

Random planted circuits (positions, heads, layers, split heads, decoys, neuron indices all
drawn from the seed) each come with the hypothesis of their algorithm and three wrong ones.
The right one must hold with every node confirmed on exactly its planted sites; each wrong
one must fail. The fixed ``derandomize`` seed keeps CI deterministic and within budget.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuitspec.spec import Hypothesis
from circuitspec.testing.planted import PlantParams, plant
from circuitspec.testing.recovery import WRONG_KINDS, hypothesis_yaml, recovery
from circuitspec.verify.core import verify_model

torch.set_num_threads(1)


def check(params: PlantParams, seed: int, wrong: str):
    planted = plant(params, seed)
    right_h = Hypothesis.from_yaml(hypothesis_yaml(planted))
    wrong_h = Hypothesis.from_yaml(hypothesis_yaml(planted, wrong))
    right, bad = verify_model([right_h, wrong_h], planted.model, seed=0)
    return planted, right, bad, recovery(planted, right)


def assert_recovered(planted, verdict, rec):
    top = f"SV{planted.params.digits - 1}"
    assert verdict.status == "holds", verdict.summary
    for node, r in rec.nodes.items():
        assert r.status == "confirmed", (node, r)
        if planted.kinds[node] == "neurons" and not node.startswith("A"):
            # neurons: never one outside the planted set, and (below the top carry) every planted one
            assert not r.extra_neurons, (node, r)
            if node != top:
                assert r.exact, (node, r)
        else:
            assert r.exact, (node, r.expected, r.found)
    heads_and_mlps = {n: r for n, r in rec.nodes.items() if n != top}
    assert all(r.exact for r in heads_and_mlps.values())


def assert_rejected(verdict, wrong):
    assert verdict.status == "fails", (wrong, verdict.summary)
    wrong_nodes = [n for n in verdict.nodes if n.node.startswith("ST" if wrong == "empty_position" else "SA")]
    assert any(n.status != "confirmed" for n in wrong_nodes), wrong


@st.composite
def cases(draw):
    params = PlantParams(
        digits=2,
        n_heads=draw(st.integers(3, 5)),
        extra_layers=draw(st.integers(0, 1)),
        split_prob=draw(st.sampled_from([0.0, 0.5, 1.0])),
        decoy_heads=draw(st.integers(0, 5)),
        decoy_neurons=draw(st.integers(0, 3)),
    )
    return params, draw(st.integers(0, 100_000)), draw(st.sampled_from(WRONG_KINDS))


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_verify_recovers_random_planted_circuits_and_rejects_wrong_claims(case):
    params, seed, wrong = case
    planted, right, bad, rec = check(params, seed, wrong)
    assert_recovered(planted, right, rec)
    assert_rejected(bad, wrong)


def test_verify_recovers_a_three_digit_planted_circuit():
    planted, right, bad, rec = check(PlantParams(digits=3, n_heads=4, decoy_heads=4), 2, "shifted_sa")
    assert_recovered(planted, right, rec)
    assert rec.precision == 1.0
    assert_rejected(bad, "shifted_sa")


@pytest.mark.xfail(
    strict=True,
    reason="known gap between two criteria: for the top carry SV(digits-1) the matcher returns the smallest set "
    "that reproduces the source's carry on every interchange pair, including pairs through a sum-9 column, "
    "while the planted core also holds units that only zero-ablation of S2+ questions shows to be needed",
)
@pytest.mark.parametrize("seed", [0, 1])
def test_verify_finds_every_needed_neuron_of_the_top_carry(seed):
    planted, right, _, rec = check(PlantParams(digits=2, n_heads=4), seed, "shifted_sa")
    top = rec.nodes["SV1"]
    assert top.core_found, (top.found, planted.core["SV1"])
