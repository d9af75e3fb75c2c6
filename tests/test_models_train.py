"""The trainer: determinism, resume after interruption, learning end to end, ins1 initialisation."""

from __future__ import annotations

import pytest
import torch

from circuitspec.errors import ModelError
from circuitspec.models import Model, measure, plan, train
from circuitspec.models.build import state_dict
from circuitspec.models.training import ins1_init, lr_at

TINY = dict(width=32, lr=3e-3)


def _weights(trained) -> dict[str, torch.Tensor]:
    return state_dict(trained.model.bridge)


@pytest.fixture(scope="module")
def reference_run():
    """40 steps of a tiny 3-digit model, uninterrupted."""
    return train(plan("add_d3_l1_h2_s11", steps=40, **TINY))


def test_same_seed_gives_identical_weights(reference_run):
    again = train(plan("add_d3_l1_h2_s11", steps=40, **TINY))
    a, b = _weights(reference_run), _weights(again)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.losses == reference_run.losses


def test_other_seed_gives_other_weights(reference_run):
    other = train(plan("add_d3_l1_h2_s12", steps=40, **TINY))
    assert not torch.equal(_weights(other)["embed.weight"], _weights(reference_run)["embed.weight"])


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_weights(reference_run, tmp_path):
    card = plan("add_d3_l1_h2_s11", steps=40, checkpoint_every=10, **TINY)

    def stop_at_25(info):
        if info.step == 25:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(card, checkpoint_dir=tmp_path, callback=stop_at_25)
    ckpt = tmp_path / f"{card.name}.ckpt"
    assert ckpt.exists()
    resumed = train(card, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 20
    a, b = _weights(reference_run), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses == reference_run.losses
    assert not ckpt.exists()  # removed once training finished


def test_checkpoint_of_another_recipe_is_refused(tmp_path):
    card = plan("add_d3_l1_h2_s11", steps=20, checkpoint_every=5, **TINY)

    def stop(info):
        if info.step == 7:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(card, checkpoint_dir=tmp_path, callback=stop)
    other = plan("add_d3_l1_h2_s11", steps=20, checkpoint_every=5, width=32, lr=1e-3)
    with pytest.raises(ModelError, match="different model or recipe"):
        train(other, checkpoint_dir=tmp_path)


def test_schedule_warms_up_then_decays():
    recipe = plan("add_d3_l1_h2_s1", steps=1000, lr=1e-3).recipe
    assert lr_at(0, recipe) == pytest.approx(1e-5)
    assert lr_at(100, recipe) == pytest.approx(1e-5 + 0.99e-3 * 0.5)
    assert lr_at(200, recipe) == pytest.approx(1e-3)
    values = [lr_at(s, recipe) for s in range(200, 1000)]
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert values[-1] < 1e-7


def test_tiny_model_learns_end_to_end():
    """Trains a 3-digit addition model from scratch (~600 steps) and measures it."""
    trained = train(plan("add_d3_l2_h2_s5", steps=600, width=64, lr=3e-3))
    assert trained.losses[0] > 2.0
    assert trained.final_loss < 0.3
    results = measure(trained.model, questions=4000, per_class=200, seed=3)
    # chance is 10^-5 per question (five answer tokens, sign aside)
    accuracy = 1 - results.uniform.failures / results.uniform.questions
    assert accuracy > 0.5, results
    assert results.per_class["S0"].accuracy > 0.7


def test_ins1_copies_the_addition_model_into_the_first_heads(reference_run):
    source = reference_run.model
    card = plan("ins1_mix_d3_l2_h3_t0.01K_s11", init_from="x", **TINY)
    from circuitspec.models.build import build_bridge

    fresh = state_dict(build_bridge(card.architecture, seed=11))
    src = state_dict(source.bridge)
    merged = ins1_init(fresh, src, card.architecture, source.card.architecture)
    hd = source.card.architecture.n_heads * source.card.architecture.d_head
    assert torch.equal(merged["embed.weight"], src["embed.weight"])
    assert torch.equal(merged["blocks.0.attn.q.weight"][:hd], src["blocks.0.attn.q.weight"])
    assert torch.equal(merged["blocks.0.attn.q.weight"][hd:], fresh["blocks.0.attn.q.weight"][hd:])
    assert torch.equal(merged["blocks.0.attn.o.weight"][:, :hd], src["blocks.0.attn.o.weight"])
    assert torch.equal(merged["blocks.1.mlp.in.weight"], fresh["blocks.1.mlp.in.weight"])  # layer 1 is new

    trained = train(card, init=source)
    assert isinstance(trained.model, Model) and trained.model.card.recipe.init_from == "x"
    with pytest.raises(ModelError, match="more n_layers"):
        ins1_init(src, fresh, source.card.architecture, card.architecture)


def test_plan_rejects_inconsistent_requests():
    with pytest.raises(ModelError, match="steps"):
        plan("add_d3_l1_h2_s1")
    with pytest.raises(ModelError, match="6000 steps"):
        plan("add_d3_l1_h2_t6K_s1", steps=5000)
    with pytest.raises(ModelError, match="init-from"):
        plan("ins1_mix_d3_l2_h3_t1K_s1")
    card = plan("add_d6_l2_h3_s372001", steps=6000)
    assert card.name == "add_d6_l2_h3_t6K_s372001"
    assert card.recipe.command.startswith("circuitspec zoo train add_d6_l2_h3_t6K_s372001 --steps 6000")


def test_arch_words_build_the_card_and_the_command():
    card = plan("add_d3_l1_h2_s11", steps=40, arch="RMS,rotary,silu", **TINY)
    a = card.architecture
    assert (a.normalization, a.positional_embedding, a.act_fn, a.attn_only) == ("RMS", "rotary", "silu", False)
    assert "--arch RMS,rotary,silu" in card.recipe.command
    bare = plan("add_d3_l1_h2_s11", steps=40, arch="none,attn-only", **TINY).architecture
    assert bare.normalization is None and bare.attn_only and bare.d_mlp == 0
    assert "--arch" not in plan("add_d3_l1_h2_s11", steps=40, **TINY).recipe.command
    for bad in ("RMS,LN", "swish"):
        with pytest.raises(ModelError):
            plan("add_d3_l1_h2_s11", steps=40, arch=bad, **TINY)


def test_other_architectures_train_and_run_on_the_hooked_engine():
    from circuitspec.engine import Engine, Intervention

    trained = train(plan("add_d3_l1_h2_s11", steps=20, arch="RMS,rotary,gelu_new", **TINY))
    engine = Engine(trained.model)
    assert engine.path == "hooked"
    out = engine.run(engine.questions(8), [Intervention("mean", [s]) for s in engine.sites()[:4]])
    assert out.pred.shape[0] == 4
