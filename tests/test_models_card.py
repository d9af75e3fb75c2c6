"""Model names, cards and the Clopper-Pearson interval (no training here)."""

from __future__ import annotations

import math

import pytest

from circuitspec.errors import ModelError
from circuitspec.models.card import ModelCard, TaskSpec, default_architecture, parse_name, strip_steps
from circuitspec.models.evaluate import betainc, clopper_pearson


def test_parse_paper_names():
    p = parse_name("ins1_mix_d6_l3_h4_t40K_s372001")
    assert (p.op, p.digits, p.n_layers, p.n_heads, p.steps, p.seed, p.ins1) == ("mix", 6, 3, 4, 40_000, 372001, True)
    assert p.name() == "ins1_mix_d6_l3_h4_t40K_s372001"
    q = parse_name("add_d6_l2_h3_s173289")
    assert q.steps is None and q.name(1500) == "add_d6_l2_h3_t1.5K_s173289"
    assert strip_steps("add_d6_l2_h3_t15K_s372001") == "add_d6_l2_h3_s372001"


@pytest.mark.parametrize("bad", ["add_d6_l2_s1", "mul_d6_l2_h3_s1", "add_d6_l2_h3_t5K", "ins1_add_d6_l2_h3_s1", ""])
def test_bad_names_raise_model_error(bad):
    with pytest.raises(ModelError) as err:
        parse_name(bad)
    assert err.value.hint


def test_card_shape_and_json_round_trip():
    card = ModelCard(name="add_d6_l2_h3_t6K_s1", architecture=default_architecture(6, 2, 3), task=TaskSpec(op="add", digits=6))
    s = card.shape
    assert (s.op, s.digits, s.n_layers, s.n_heads, s.n_ctx, s.d_mlp) == ("add", 6, 2, 3, 22, 512)
    assert ModelCard.model_validate_json(card.to_json()) == card
    with pytest.raises(ValueError):
        ModelCard.model_validate_json(card.to_json().replace('"n_heads": 3', '"n_heads": 3, "bogus": 1'))


def test_clopper_pearson_known_values():
    # zero failures: upper bound has the closed form 1 - (alpha/2)^(1/n)
    lo, hi = clopper_pearson(0, 1_000_000)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 1e6), rel=1e-9)
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    # a textbook value: 3 of 10
    lo, hi = clopper_pearson(3, 10)
    assert lo == pytest.approx(0.06674, abs=1e-5) and hi == pytest.approx(0.65245, abs=1e-5)


@pytest.mark.parametrize("n,k,p", [(20, 6, 0.23), (50, 1, 0.01), (200, 150, 0.8), (1000, 3, 0.002)])
def test_incomplete_beta_matches_binomial_tail(n, k, p):
    # I_p(k, n-k+1) = P(Binomial(n, p) >= k)
    tail = sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))
    assert betainc(k, n - k + 1, p) == pytest.approx(tail, rel=1e-9, abs=1e-15)


def test_clopper_pearson_coverage_definition():
    # at the bounds, the binomial tails equal alpha/2
    n, k = 1_000_000, 12
    lo, hi = clopper_pearson(k, n)
    assert betainc(k, n - k + 1, lo) == pytest.approx(0.025, rel=1e-6)
    assert 1 - betainc(k + 1, n - k, hi) == pytest.approx(0.025, rel=1e-6)
