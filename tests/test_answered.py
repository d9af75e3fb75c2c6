"""Interchange runs read the predicted answer as the model's own earlier answer tokens (``Engine.answered``).

A model writes its answer one token at a time and reads what it wrote: the digits after the sign
read the sign. On mix_d6_l3_h4_t6K_s372001 the layer-0 heads that attend the operator carry it to
every answer token. Patched from the same question with the other operator, they move the whole
answer as the causal model predicts once each position reads the predicted answer so far. Run on the
base's own answer tokens instead, the digits after a flipped sign read the old sign, and nearly every
failing pair is one whose sign flips.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.errors import EngineError
from circuitspec.match import causal

# the layer-0 heads from the operator token on that attend it (>= 0.2) on this model: mixed_3layer's OPR placement
OPERATOR_HEADS = "P6.L0.H0 P6.L0.H1 P6.L0.H3 P7.L0.H0 P8.L0.H1 P8.L0.H2 P9.L0.H2 P10.L0.H2 P11.L0.H2 P12.L0.H1 P12.L0.H2 P13.L0.H1 P14.L0.H2 P14.L0.H3"


def test_answered_replaces_the_answer_tokens_only(add6_model):
    engine = Engine(add6_model)
    q, other = engine.questions(8, seed=1), engine.questions(8, seed=2)
    answers = engine.task.answers(other)
    out = engine.answered(q, answers)
    question = [p for p in range(q.shape[1]) if p not in engine.answer_positions]
    assert torch.equal(out[:, question], q[:, question])
    assert torch.equal(out[:, engine.answer_positions], answers)
    assert torch.equal(engine.task.answers(out), engine.task.answers(q))  # the gold answer is the question's
    assert torch.equal(engine.answered(q, engine.task.answers(q)), q)
    with pytest.raises(EngineError, match="answers must be"):
        engine.answered(q, answers[:, 1:])


def test_operator_heads_move_the_answer_once_the_run_reads_the_predicted_sign(zoo_model):
    engine = Engine(zoo_model("mix_d6_l3_h4_t6K_s372001"))
    sites = tuple(Site.parse(s) for s in OPERATOR_HEADS.split())
    pairs = causal.draw_pairs(engine, ("OPR", None), n_pairs=256, keep=(), seed=0)
    every = set(engine.answer_labels)
    read_back = causal.score(engine, pairs, [sites], [every])[0]
    assert read_back.informative >= 200 and read_back.successes / read_back.informative >= 0.9

    on_base = engine.run(pairs.base, [Intervention("interchange", sites, source=pairs.source)]).pred[0].cpu()
    wrong = (on_base != pairs.predicted).any(dim=1)
    sign = engine.answer_labels.index("sign")
    flipped = pairs.predicted[:, sign] != pairs.gold[:, sign]
    assert wrong.float().mean() > 0.3  # on the base's own answer half the pairs fail...
    assert (wrong & flipped).sum() >= 0.9 * wrong.sum()  # ...nearly all of them where the sign flips
