"""A property test of a deliberately wrong causal claim on a zoo model, shrunk to the simplest pair.

The claim: "patching the layer-0 heads at the token that predicts A(2) with their activations
on a question whose Base Add SA(2) differs never changes the model's A(2)". The paper (and the
addition specs) put SA(n) exactly there, so the claim is false; hypothesis must find a pair that
breaks it, shrink it towards zeros, and show it in the paper's notation. The model is the shipped
one-layer 5-digit addition model (the smallest; its SA heads sit where the 2-layer models' do).
"""

from __future__ import annotations

import re

import pytest

# Imported before pytester's in-process run, which drops modules it sees imported
# (C extensions such as torch must not load twice).
import circuitspec.engine  # noqa: F401
import transformer_lens.config  # noqa: F401  (pulls in datasets/pyarrow, which cannot load twice)
import transformer_lens.model_bridge  # noqa: F401
import circuitspec.models.zoo  # noqa: F401
import circuitspec.strategies  # noqa: F401

pytest_plugins = ["pytester"]

MODEL = "add_d5_l1_h3_t6K_s372001"
DIGITS = 5
QUIET = ["-p", "no:hypothesispytest", "-p", "no:typeguard", "-p", "no:jaxtyping", "-p", "no:anyio", "-p", "no:cacheprovider"]

WRONG_CLAIM = f'''
import pytest
import torch
from hypothesis import given, note, settings

from circuitspec.engine import Engine, Site, interchange
from circuitspec.strategies import counterfactual_pairs, model_answers


@pytest.fixture(scope="module")
def engine(circuit_model):
    torch.set_num_threads(1)  # one question per run: threads only contend
    return Engine(circuit_model("{MODEL}"))


def test_layer0_heads_at_a2_ignore_base_add(engine):
    layout = engine.task.layout
    position = layout.predicts(2)
    sites = [Site.for_head(0, position, h) for h in range(engine.shape.n_heads)]
    a2 = layout.answer_positions.index(layout.a(2))

    @settings(max_examples=25, deadline=None, database=None, derandomize=True)
    @given(counterfactual_pairs("add", {DIGITS}, "SA", 2))
    def claim(pair):
        base, source = pair.tokens().split(1)
        clean = model_answers(engine.bridge, base)[0]
        patched = engine.run(base, [interchange(sites, source)]).pred[0, 0]
        note(f"model's answer {{clean}}, with the heads patched A(2) = {{int(patched[a2])}}")
        assert int(patched[a2]) == int(clean[pair.answer_index(2)]), f"patching changed A(2): {{pair}}"

    claim()
'''


def test_wrong_causal_claim_is_falsified_and_shrunk(pytester: pytest.Pytester):
    pytester.makepyfile(test_claim=WRONG_CLAIM)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # hypothesis shows the shrunk pair as the test's argument, in the paper's notation
    found = re.search(r"pair=(SA\(2\): base (\S+) \(SA\(2\)=(\d)\), source (\S+) \(SA\(2\)=(\d)\), predicted ([\d+=-]+))", out)
    assert found, out[-3000:]
    _, base, base_sa, source, source_sa, predicted = found.groups()
    # Shrunk: the base is the all-zero question; the source changes column 2 alone, by a small digit.
    assert base == "00000+00000=+000000"
    assert re.fullmatch(r"00(\d)00\+00(\d)00=\+00\d\d00", source), source
    digits = [int(source[2]), int(source[8])]
    assert sum(digits) <= 2 and int(source_sa) == sum(digits) % 10 != int(base_sa)
    assert predicted == f"00000+00000=+000{source_sa}00"
    assert "with the heads patched A(2) = " in out  # the note, shown for the shrunk example
