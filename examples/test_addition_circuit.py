"""Circuit claims as regression tests, with circuitspec's pytest plugin (active once installed).

If a change to training moved "Base Add is computed by layer-0 heads where each digit is
predicted", these tests would fail, naming the node, the measured figures with their intervals,
and the report to open.

    pytest examples/test_addition_circuit.py
    pytest examples/test_addition_circuit.py --circuit-report circuit-report/   # + JSON/SVG/HTML
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from circuitspec import assert_edge, assert_faithful, assert_holds, assert_node
from circuitspec.engine import Engine, interchange
from circuitspec.strategies import counterfactual_pairs

SPECS = Path(__file__).resolve().parent.parent / "specs"
ONE_LAYER = SPECS / "addition_1layer.yaml"  # the paper's algorithm for one-layer addition models
MODEL = "add_d5_l1_h3_t6K_s372001"
# The 6K-step 1-layer model fails as often as the paper's. The zoo's 15K-step one is more
# accurate on S2: every node of the paper's algorithm is confirmed there, but the circuit alone
# keeps only about two thirds of its answers; it also looks one column further (last test).
ONE_LAYER_MODELS = "add_*_l1_h3_t6K_*"


# One test per matching zoo model; the test ids are the model names.
# Every node of the paper's 1-layer algorithm is confirmed, but as written it does not hold: path
# patching its edges shows that Base Add reaches each answer digit through the layer-0 MLP, while the
# Carry One heads write part of the carry straight into the answer logits, so through the MLP alone
# the carry moves A(n) as predicted on too few pairs ("the MLP combines them" is only part of it).
@pytest.mark.circuit(spec=ONE_LAYER, models=ONE_LAYER_MODELS)
def test_base_add_reaches_each_digit_through_the_mlp(circuit_spec, circuit_target):
    for n in range(circuit_target.task.digits):
        assert_edge(circuit_spec, circuit_target, f"SA{n}", f"A{n}")


@pytest.mark.circuit(spec=ONE_LAYER, models=ONE_LAYER_MODELS)
def test_base_add_lives_in_layer_0_where_each_digit_is_predicted(circuit_spec, circuit_target):
    # the same verdict as above: verified once per session, whatever the number of tests
    layout = circuit_target.task.layout
    for n in range(circuit_target.task.digits):
        node = assert_node(circuit_spec, circuit_target, f"SA{n}")
        assert all(site.startswith(f"P{layout.predicts(n)}.L0.H") for site in node.sites)


@pytest.mark.circuit(spec=ONE_LAYER, models=ONE_LAYER_MODELS)
def test_the_circuit_alone_does_most_of_the_addition(circuit_spec, circuit_target):
    assert_faithful(circuit_spec, circuit_target, at_least=0.8)


@pytest.mark.circuit(spec=SPECS / "negative_control.yaml", models=ONE_LAYER_MODELS)
def test_a_wrong_hypothesis_is_rejected(circuit_spec, circuit_target):
    with pytest.raises(AssertionError, match="SA0 .*not placed"):
        assert_holds(circuit_spec, circuit_target)


# Trained longer, the same seed adds a head per answer token that reads column n-2: a one-column
# look-ahead for carries through a sum-9 column (its edges into the MLP fail as the carry's do).
@pytest.mark.circuit(spec=SPECS / "addition_1layer_lookahead.yaml", models="add_*_l1_h3_t15K_*")
def test_the_longer_trained_model_looks_one_column_further(circuit_spec, circuit_target):
    for n in range(2, circuit_target.task.digits):
        assert_node(circuit_spec, circuit_target, f"LA{n}")


# A property test of a causal claim: interchanging the SA(3) heads with their activations on a
# question whose SA(3) differs moves A(3) exactly as the causal model predicts. On failure,
# hypothesis shrinks to the simplest pair and prints it in the paper's notation.
def test_sa3_heads_carry_base_add(circuit_model):
    torch.set_num_threads(1)  # one question per run: threads would only contend
    model = circuit_model(MODEL)
    sites = assert_node(ONE_LAYER, model, "SA3").sites
    engine = Engine(model)
    layout = model.task.layout
    a3 = layout.answer_positions.index(layout.a(3))

    @settings(max_examples=25, deadline=None, database=None, derandomize=True)
    @given(counterfactual_pairs("add", model.task.digits, "SA", 3))
    def interchange_moves_a3(pair):
        base, source = pair.tokens().split(1)
        patched = engine.run(base, [interchange(sites, source)]).pred[0, 0]
        assert int(patched[a3]) == pair.predicted_digit(3), pair

    interchange_moves_a3()
