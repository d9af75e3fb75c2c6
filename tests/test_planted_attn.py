"""Acceptance on an attention-only model: a planted circuit with no MLP (``testing.planted_attn``),
exported as a TransformerLens checkpoint and brought in with ``zoo import``, runs on the engine's
hooked path; the true hypothesis holds on exactly the planted heads, a wrong site and a false
edge fail."""

from __future__ import annotations

import pytest
import torch

from circuitspec.cli import main
from circuitspec.models.tlformat import describe
from circuitspec.models.zoo import export_pth, import_pth, load
from circuitspec.spec import Hypothesis
from circuitspec.testing.edges import edge_hypothesis_yaml, edge_recovery
from circuitspec.testing.planted import PlantError, all_questions, answer_logits, answers
from circuitspec.testing.planted_attn import AttnPlantParams, plant_attn
from circuitspec.testing.recovery import hypothesis_yaml, recovery
from circuitspec.testing.weights import LOGIT
from circuitspec.verify.core import verify_model
from test_planted_verify import assert_recovered, assert_rejected

torch.set_num_threads(1)


@pytest.mark.parametrize("digits, n_heads, seed, carry", [(1, 4, 0, None), (2, 4, 3, None), (2, 6, 7, 5), (3, 5, 1, None)])
def test_attention_only_planted_circuits_answer_every_question(digits, n_heads, seed, carry):
    planted = plant_attn(AttnPlantParams(digits=digits, n_heads=n_heads, decoy_heads=3, carry_position=carry), seed=seed)
    assert carry is None or planted.carry_position == carry
    arch = planted.model.card.architecture
    assert arch.attn_only and arch.normalization is None and arch.n_layers == digits + 3
    qs = all_questions(digits)
    if digits == 3:
        qs = qs[torch.randperm(len(qs), generator=torch.Generator().manual_seed(0))[:50_000]]
    assert torch.equal(answers(planted.bridge, qs, planted.layout), planted.task.answers(qs))
    with torch.no_grad():
        top2 = answer_logits(planted.bridge(qs[:5000]), planted.layout).topk(2, dim=-1).values
    assert (top2[..., 0] - top2[..., 1]).min() >= 0.49 * LOGIT  # the design's margin: LOGIT / 2 at the sign
    heads = {s for sites in planted.truth.values() for s in sites}
    assert len(heads) == sum(len(s) for s in planted.truth.values()) and not heads & set(planted.decoys)


def test_bad_attention_only_parameters_are_refused():
    with pytest.raises(PlantError, match="at least 4 heads"):
        AttnPlantParams(n_heads=3)
    with pytest.raises(PlantError, match="carry_position"):
        plant_attn(AttnPlantParams(digits=2, carry_position=7))


def test_an_imported_attention_only_planted_checkpoint_is_verified_on_the_hooked_path(tmp_path):
    planted = plant_attn(AttnPlantParams(digits=2, n_heads=4, decoy_heads=3), seed=1)
    pth = export_pth(planted.model, tmp_path / "planted_attn.pth")
    zoo = tmp_path / "zoo"
    assert main(["zoo", "import", str(pth), "--op", "add", "--out", str(zoo), "--questions", "2000", "--per-class", "20"]) == 0
    model = load("planted_attn", folder=zoo)
    assert describe(model.card.architecture) == "no normalization, standard positions, attention only"
    assert model.card.results.uniform.failures == 0

    qs = all_questions(2)  # round trip: import, export, import gives the same logits
    again = import_pth(export_pth(model, tmp_path / "again.pth"), "add")
    with torch.no_grad():
        want = planted.bridge(qs)
        assert torch.equal(model.bridge(qs), want) and torch.equal(again.bridge(qs), want)
    assert again.card.architecture == model.card.architecture == planted.model.card.architecture

    texts = [hypothesis_yaml(planted), hypothesis_yaml(planted, "shifted_sa"), edge_hypothesis_yaml(planted, "skip_cascade")]
    right, wrong_site, false_edge = verify_model([Hypothesis.from_yaml(t) for t in texts], model, seed=0, cache_dir=tmp_path / "cache")
    assert right.engine_path == wrong_site.engine_path == false_edge.engine_path == "hooked"
    rec = recovery(planted, right)
    assert_recovered(planted, right, rec)
    assert rec.precision == rec.recall == 1.0 and len(rec.nodes) == 11
    assert_rejected(wrong_site, "shifted_sa")
    assert false_edge.status == "fails"
    edges = edge_recovery(planted, false_edge, "skip_cascade")
    assert edges.true_confirmed == edges.true_edges == 9 and edges.false_edges == 1 and edges.false_accepted == 0
    assert false_edge.edge("ST0", "SV1").status == "failed"
