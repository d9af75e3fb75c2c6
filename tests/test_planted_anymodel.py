"""Acceptance on other architectures: planted circuits without LayerNorm (no normalization,
LNPre, RMSNorm), exported as TransformerLens checkpoints and brought in with ``zoo import``, run
on the engine's hooked path; the true hypothesis holds on exactly the planted sites and a
false one fails, as on the zoo's LayerNorm family (``tests/test_planted_verify.py``)."""

from __future__ import annotations

import pytest
import torch

from circuitspec.cli import main
from circuitspec.models.zoo import export_pth, load
from circuitspec.spec import Hypothesis
from circuitspec.testing.planted import PlantParams, all_questions, answers, plant
from circuitspec.testing.recovery import hypothesis_yaml, recovery
from circuitspec.verify.core import verify_model
from test_planted_verify import assert_recovered, assert_rejected

torch.set_num_threads(1)


@pytest.mark.parametrize("normalization", ["LNPre", "RMS", None])
def test_planted_circuits_answer_exactly_without_layernorm(normalization):
    planted = plant(PlantParams(digits=2, n_heads=3, normalization=normalization), seed=4)
    qs = all_questions(2)
    assert torch.equal(answers(planted.bridge, qs, planted.layout), planted.task.answers(qs))


def test_an_imported_ln_free_planted_checkpoint_is_verified_on_the_hooked_path(tmp_path):
    planted = plant(PlantParams(digits=2, n_heads=4, decoy_heads=3, normalization=None), seed=11)
    pth = export_pth(planted.model, tmp_path / "planted_lnfree.pth")
    zoo = tmp_path / "zoo"
    assert main(["zoo", "import", str(pth), "--op", "add", "--out", str(zoo), "--questions", "2000", "--per-class", "20"]) == 0
    model = load("planted_lnfree", folder=zoo)
    assert model.card.architecture.normalization is None and model.card.results.uniform.failures == 0
    right_h = Hypothesis.from_yaml(hypothesis_yaml(planted))
    wrong_h = Hypothesis.from_yaml(hypothesis_yaml(planted, "shifted_sa"))
    right, wrong = verify_model([right_h, wrong_h], model, seed=0, cache_dir=tmp_path / "cache")
    assert right.engine_path == wrong.engine_path == "hooked"
    assert_recovered(planted, right, recovery(planted, right))
    assert_rejected(wrong, "shifted_sa")
