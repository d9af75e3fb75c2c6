"""Question generation: class-stratified construction, the paper's enrichment, tri-case sets."""

from __future__ import annotations

import pytest
import torch
from task_reference import class_name, parse

from circuitspec.errors import TaskError
from circuitspec.tasks import ArithmeticTask
from circuitspec.vocabulary import ADD_CLASSES, SUB_CLASSES


def reference_classes(task, tokens):
    return [class_name(*parse(t, task.digits), task.digits) for t in task.decode(tokens)]


def expected_available(cls: str, digits: int) -> bool:
    """A class exists when its cascade fits, plus the column that absorbs a borrow."""
    family, k = cls[0], int(cls[1:])
    if family == "S":
        return k <= digits
    return k + 1 <= digits or cls in ("M0", "N1")


@pytest.mark.parametrize("digits", range(1, 21))
def test_every_available_class_is_constructed_exactly(digits):
    g = torch.Generator().manual_seed(digits)
    task = ArithmeticTask("mix", digits)
    available = task.available_classes()
    assert available == [c for c in ADD_CLASSES + SUB_CLASSES if expected_available(c, digits)]
    for cls in available:
        tokens = task.generate(40, g, cls=cls)
        assert set(reference_classes(task, tokens)) == {cls}
        assert task.decode(task.answers(tokens)) == [t[2 * digits + 2 :] for t in task.decode(tokens)]
    for cls in set(ADD_CLASSES + SUB_CLASSES) - set(available):
        with pytest.raises(TaskError) as err:
            task.generate(1, g, cls=cls)
        assert cls in str(err.value) and "allowed: " + ", ".join(available) in str(err.value)


def test_constructed_classes_vary_where_the_cascade_sits():
    task = ArithmeticTask("add", 10)
    tokens = task.generate(500, torch.Generator().manual_seed(1), cls="S3")
    carry_column = task.all_variables(tokens)["ST"].eq(2).long().argmax(1)
    assert len(set(carry_column.tolist())) >= 6


def test_unknown_class_for_the_operation():
    with pytest.raises(TaskError, match="(?s)unknown add class 'M2'.*allowed: S0, S1"):
        ArithmeticTask("add", 6).generate(3, torch.Generator(), cls="M2")


def test_generation_is_seeded():
    task = ArithmeticTask("mix", 6)
    a = task.generate(100, torch.Generator().manual_seed(5), enrich=True)
    b = task.generate(100, torch.Generator().manual_seed(5), enrich=True)
    assert torch.equal(a, b)


def test_enrichment_probabilities_are_the_knobs():
    g = torch.Generator().manual_seed(0)
    add = ArithmeticTask("add", 6)
    tokens = add.generate(500, g, enrich=True, sum9_batch_p=1.0, sum9_slot_p=1.0)
    assert bool((add.all_variables(tokens)["SS"] == 1).all())
    sub = ArithmeticTask("sub", 6)
    tokens = sub.generate(500, g, enrich=True, equal_batch_p=1.0)
    assert sub.decode(tokens[:1])[0][:6] == sub.decode(tokens[:1])[0][7:13]
    assert bool((sub.all_variables(tokens)["MZ"] == 1).all())
    mix = ArithmeticTask("mix", 6)
    assert mix.variable(mix.generate(500, g, sub_p=0.0), "OPR").sum() == 0
    assert mix.variable(mix.generate(500, g, sub_p=1.0), "OPR").sum() == 500


def test_default_enrichment_rates():
    g = torch.Generator().manual_seed(0)
    add, sub, mix = (ArithmeticTask(op, 6) for op in ("add", "sub", "mix"))
    # sum-9 columns: 10% of slots normally, 10% + 0.4 * 0.4 * 90% = 24.4% on average when enriched
    sum9 = torch.stack([add.all_variables(add.generate(64, g, enrich=True))["SS"].float().mean() for _ in range(400)])
    assert abs(float(sum9.mean()) - 0.244) < 0.03
    assert abs(float((sum9 > 0.2).float().mean()) - 0.4) < 0.08  # whole batches are enriched
    negative = sub.variable(sub.generate(20000, g, enrich=True), "SGN").float().mean()
    plain = sub.variable(sub.generate(20000, g), "SGN").float().mean()
    assert float(negative) > float(plain) + 0.05
    assert abs(float(mix.variable(mix.generate(20000, g, enrich=True), "OPR").float().mean()) - 0.66) < 0.02


@pytest.mark.parametrize("op, name", [("add", "ST"), ("sub", "MT"), ("sub", "NT"), ("mix", "ST"), ("mix", "NT")])
def test_tricase_sets_are_balanced_and_labelled(op, name):
    task = ArithmeticTask(op, 5)
    g = torch.Generator().manual_seed(2)
    for column in range(5):
        tokens, cases = task.tricase_questions(column, 30, g, name=name)
        assert cases.bincount().tolist() == [30, 30, 30]
        assert torch.equal(task.variable(tokens, name, column), cases)
        assert set(task.variable(tokens, "OPR").tolist()) == {int(name != "ST")}


def test_tricase_bad_requests():
    task = ArithmeticTask("add", 4)
    with pytest.raises(TaskError, match="(?s)'XT'.*MT, NT, ST"):
        task.tricase_questions(0, 5, torch.Generator(), name="XT")
    with pytest.raises(TaskError, match=r"ST\(4\)"):
        task.tricase_questions(4, 5, torch.Generator())
    with pytest.raises(TaskError, match="does not use"):
        task.tricase_questions(0, 5, torch.Generator(), name="MT")
