"""The arithmetic task's layouts: the paper's and the answer digits reversed (units first).

The layout is part of the model card (and of a zoo name: ``add_rev_...``); positions a spec names
(``A(n)``, ``predicts A(n)``) follow it, so one spec expands on either without edits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from circuitspec.errors import SpecError, TaskError
from circuitspec.models.card import ModelCard, TaskSpec, default_architecture, parse_name
from circuitspec.models.training import plan
from circuitspec.spec import expand, load
from circuitspec.spec.shape import make_shape
from circuitspec.tasks import ArithmeticTask, Layout
from circuitspec.tasks.registry import make_task

ROOT = Path(__file__).resolve().parents[1]
REVERSED = ROOT / "examples" / "models" / "add_rev_d5_l1_h3_t6K_s372001.json"
REVERSED_SPEC = ROOT / "examples" / "specs" / "addition_reversed.yaml"


def test_reversed_answers_are_the_paper_answers_units_first():
    paper, rev = ArithmeticTask("add", 6), ArithmeticTask("add", 6, "reversed")
    assert rev.decode(rev.encode(["133357+182243="])) == ["133357+182243=+0065130"]
    assert rev.decode(rev.encode(["133357+182243=+0065130"])) == ["133357+182243=+0065130"]
    with pytest.raises(TaskError, match="wrong answer"):
        rev.encode(["133357+182243=+0315600"])
    tokens = paper.generate(256, torch.Generator().manual_seed(1))
    flipped = torch.cat([tokens[:, : paper.layout.sign + 1], tokens[:, paper.layout.sign + 1 :].flip(1)], dim=1)
    assert torch.equal(rev.answers(flipped), flipped[:, rev.layout.sign :])
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    a, b = paper.counterfactuals(tokens, ("SC", 2), g1), rev.counterfactuals(flipped, ("SC", 2), g2)
    assert torch.equal(a.predicted[:, 1:].flip(1), b.predicted[:, 1:]) and torch.equal(a.valid, b.valid)


def test_positions_follow_the_layout():
    paper, rev = Layout(5), Layout(5, "reversed")
    assert (paper.a(0), paper.a(5), rev.a(0), rev.a(5)) == (18, 13, 13, 18)
    assert rev.answer_labels == ["sign", "A0", "A1", "A2", "A3", "A4", "A5"]
    assert [rev.label(p) for p in (12, 13, 18)] == ["A6", "A0", "A5"]  # the sign is labelled A6, as in the paper
    with pytest.raises(TaskError, match="unknown layout"):
        Layout(5, "mirror")


def test_one_spec_expands_on_either_layout():
    h = load(ROOT / "specs" / "addition_1layer.yaml")
    paper = expand(h, make_shape("add", 5, 1, 3))
    rev = expand(h, make_shape("add", 5, 1, 3, layout="reversed"))
    assert paper.nodes["SA0"]["instance"].positions == [17] and rev.nodes["SA0"]["instance"].positions == [12]
    assert rev.nodes["SC1"]["instance"].positions == [14]  # predicts A(2): the token A(1)
    assert sorted(paper.edges) == sorted(rev.edges)
    with pytest.raises(SpecError, match="unknown layout"):
        make_shape("add", 5, 1, 3, layout="mirror")


def test_the_layout_is_part_of_the_card_and_the_name():
    parsed = parse_name("add_rev_d5_l1_h3_t6K_s372001")
    assert parsed.layout == "reversed" and parsed.name() == "add_rev_d5_l1_h3_t6K_s372001"
    card = plan("add_rev_d5_l1_h3_s372001", steps=6000)
    assert card.task.layout == "reversed" and card.shape.layout == "reversed" and card.name == "add_rev_d5_l1_h3_t6K_s372001"
    assert ModelCard.model_validate_json(card.to_json()) == card
    assert parse_name("add_d5_l1_h3_s1").layout is None and ArithmeticTask("add", 5).layout.order == "paper"
    with pytest.raises(ValueError, match="unknown layout"):
        ModelCard(name="x", architecture=default_architecture(5, 1, 3), task=TaskSpec(op="add", digits=5, layout="mirror"))
    assert make_task("add", 5, "reversed").layout.reversed
    with pytest.raises(TaskError, match="unknown layout"):
        make_task("examples.reverse_task:ReverseTask", 5, "reversed")


def test_the_reversed_model_reads_the_carry_from_the_digit_it_just_emitted():
    """One layer suffices in the reversed layout: the head at the token A(n) that attends column n
    carries the whole cascaded carry SV(n); in the paper's layout the same hypothesis fails."""
    import circuitspec as cs

    rev = cs.load_model(REVERSED)
    assert rev.card.task.layout == "reversed" and rev.card.results.per_class["S5"].accuracy == 1.0
    verdict = cs.verify(REVERSED_SPEC, rev)
    assert verdict.status == "holds" and verdict.metrics.faithfulness.value >= 0.9
    placed = {n.node: n.sites for n in verdict.nodes}
    assert placed["SV2"] == ["P15.L0.H2"] and placed["SA2"] == ["P14.L0.H0", "P14.L0.H1"]
    assert cs.verify(ROOT / "specs" / "addition_1layer.yaml", rev).status == "holds"  # the paper's spec, unedited
    paper = cs.verify(REVERSED_SPEC, "add_d5_l1_h3_t6K_s372001")
    assert paper.status == "fails" and paper.metrics.faithfulness.value < 0.5
