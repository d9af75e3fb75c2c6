"""Which answer tokens a placement is held to in its interchange test (``candidates.served``).

A redundant copy (no single site's ablation changes any answer) is held to the answer tokens
its sites can reach. A last-layer site reaches only the token predicted at its own position:
counting later ones made the top digit's carry heads of add_d6_l2_h3_t8K_s372001 (retrained)
fail at 0.00 on pairs that changed only A5, which no head at the token predicting A6 can move.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from circuitspec.engine import Engine, Site
from circuitspec.match.candidates import served
from circuitspec.models.zoo import load

MODEL = "add_d5_l2_h3_t3K_s372001"  # 2 layers; A5 is predicted at position 12, A0 at 17


class _Facts:
    """Facts whose sites impact what ``impacts`` says (nothing by default)."""

    def __init__(self, impacts=None):
        self.impacts = impacts or {}

    def site(self, site):
        return SimpleNamespace(impacts=self.impacts.get(site, []))


@pytest.fixture(scope="module")
def engine():
    return Engine(load(MODEL), seed=0)


def _position_predicting(engine, label):
    return dict(zip(engine.answer_labels, engine.answer_positions))[label] - 1


def test_a_redundant_last_layer_site_serves_only_its_own_token(engine):
    p = _position_predicting(engine, "A3")
    assert served([Site.for_head(1, p, 0), Site.for_head(1, p, 2)], _Facts(), engine) == {"A3"}
    assert served([Site.for_mlp(1, p)], _Facts(), engine) == {"A3"}


def test_a_redundant_earlier_layer_site_serves_every_later_token(engine):
    p = _position_predicting(engine, "A3")
    assert served([Site.for_head(0, p, 1)], _Facts(), engine) == {"A3", "A2", "A1", "A0"}
    mixed = [Site.for_head(1, _position_predicting(engine, "A5"), 0), Site.for_head(1, p, 0)]
    assert served(mixed, _Facts(), engine) == {"A5", "A3"}


def test_measured_impacts_win_over_reach(engine):
    p = _position_predicting(engine, "A3")
    site = Site.for_head(0, p, 1)
    assert served([site], _Facts({site: ["A3"]}), engine) == {"A3"}
    neurons = Site.for_neurons(1, p, [3, 9])
    assert served([neurons], _Facts({Site.for_mlp(1, p): ["A3"]}), engine) == {"A3"}
