"""The hypothesis strategies: questions, classes, counterfactual pairs, shrinking, notation."""

from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import circuitspec.strategies as strategies
from circuitspec.errors import TaskError
from circuitspec.strategies import CounterfactualPair, Question, batch, counterfactual_pairs, parse_key, questions
from circuitspec.tasks.arithmetic import ArithmeticTask

FAST = settings(max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
MIX6 = ArithmeticTask("mix", 6)


@FAST
@given(questions("mix", 6))
def test_questions_match_the_task_encoding(q: Question):
    tokens = batch([q])
    assert MIX6.decode(tokens) == [q.text]
    assert torch.equal(MIX6.encode([q.question]), tokens)
    assert q.value == (q.x + q.y if q.op == "+" else q.x - q.y)
    for n in range(7):
        assert q.answer_digit(n) == int(q.answer[q.digits + 1 - n])


@FAST
@given(st.data())
def test_class_strategies_build_questions_of_that_class(data):
    digits = data.draw(st.sampled_from([5, 6]))
    task = ArithmeticTask("mix", digits)
    cls = data.draw(st.sampled_from(task.available_classes()))
    q = data.draw(questions("mix", digits, classes=cls))
    assert task.class_names[int(task.classes(batch([q]))[0])] == cls, q


def test_questions_shrink_to_the_simplest_question():
    assert find(questions("add", 6), lambda q: True).text == "000000+000000=+0000000"
    assert str(find(questions("add", 6, classes="S3"), lambda q: True)) == "000001+000999=+0001000"
    assert str(find(questions("sub", 6, classes="N2"), lambda q: True)) == "000001-000100=-0000099"
    # a failing property is reduced to its simplest witness: one carry out of column 2
    q = find(questions("add", 6), lambda q: q.answer_digit(3) != (q.column(3)[0] + q.column(3)[1]) % 10)
    nonzero = [n for n in range(6) if q.column(n) != (0, 0)]
    assert len(nonzero) == 1 and nonzero[0] < 3 and sum(q.column(nonzero[0])) == 10, q


def test_mix_classes_pick_the_operator():
    assert find(questions("mix", 4, classes=["M2"]), lambda q: True).op == "-"
    assert find(questions("mix", 4, classes=["S2"]), lambda q: True).op == "+"


PAIR_KEYS = ["SA(2)", "SC(0)", "SS(3)", "ST(1)", "SV(2)", "A(6)", "A(0)", "MD(1)", "MB(2)", "MV(3)", "NV(1)", "GT(4)", "SGN", "OPR"]


@settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.data())
@pytest.mark.parametrize("key", PAIR_KEYS)
def test_counterfactual_pairs_differ_and_carry_the_causal_prediction(key, data):
    pair: CounterfactualPair = data.draw(counterfactual_pairs("mix", 6, key))
    name, n = parse_key(key)
    tokens = pair.tokens()
    values = MIX6.variable(tokens, name, n)
    assert values.tolist() == [pair.base_value, pair.source_value]
    assert pair.base_value != pair.source_value
    predicted = MIX6.causal_answer(tokens[:1], {(name, n): values[1:]})
    assert MIX6.decode(predicted) == [pair.predicted]
    assert pair.predicted != pair.base.answer  # informative
    assert pair.changed_digits()
    assert str(pair).startswith(f"{key}: base {pair.base.text}")


def test_pairs_shrink_to_one_column_and_print_in_paper_notation():
    pair = find(counterfactual_pairs("add", 6, "SC", 1), lambda p: True)
    assert str(pair) == (
        "SC(1): base 000000+000000=+0000000 (SC(1)=0), source 000010+000090=+0000100 (SC(1)=1), "
        "predicted 000000+000000=+0000100"
    )
    assert pair.changed_digits() == [2]
    assert pair.predicted_digit(2) == 1 and pair.answer_index(2) == 5


def test_uninformative_pairs_are_allowed_when_asked():
    pair = find(counterfactual_pairs("add", 4, "SS(1)", informative=False), lambda p: True)
    assert pair.source_value == 1 and pair.predicted == pair.base.answer


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: questions("add", 6, classes="M2"), "unknown add class"),
        (lambda: questions("add", 2, classes="S3"), "does not exist with 2 digits"),
        (lambda: questions("sub", 1, classes="M1"), "M1 .*2"),
        (lambda: questions("div", 6), "unknown operation"),
        (lambda: questions("add", 0), "digits must be"),
        (lambda: counterfactual_pairs("add", 6, "OPR"), "single operator"),
        (lambda: counterfactual_pairs("add", 6, "SX(2)"), "did you mean"),
        (lambda: counterfactual_pairs("add", 6, "SA(6)"), "does not exist"),
        (lambda: counterfactual_pairs("add", 6, "SA(2)", 3), "names column 2"),
        (lambda: Question.parse("12+34=+047"), "wrong answer"),
        (lambda: Question.parse("12+345="), "not a question"),
    ],
)
def test_user_errors_are_task_errors(call, match):
    with pytest.raises(TaskError, match=match):
        call()


def test_question_parse_round_trip():
    q = Question.parse("000045+000055=+0000100")
    assert (q.x, q.y, q.op, q.digits) == (45, 55, "+", 6)
    assert Question.parse("000045+000055=") == q
    assert q.column(1) == (4, 5)


def test_docstring_examples_run():
    result = doctest.testmod(strategies, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_hypothesis_prints_falsifying_examples_in_paper_notation():
    from hypothesis.vendor.pretty import pretty

    pair = find(counterfactual_pairs("add", 3, "SA(1)"), lambda p: True)
    assert pretty(pair) == str(pair) == "SA(1): base 000+000=+0000 (SA(1)=0), source 000+010=+0010 (SA(1)=1), predicted 000+000=+0010"
    assert pretty(pair.source) == "000+010=+0010"
