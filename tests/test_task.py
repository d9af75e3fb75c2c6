"""The arithmetic task against plain integer arithmetic: tokens, answers, variables, classes, causal model."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from task_reference import batches, causal_answer, class_name, question, variables

from circuitspec.errors import TaskError
from circuitspec.tasks import VARIABLES, ArithmeticTask

FAST = settings(max_examples=60, deadline=None)


def task_for(rows) -> str:
    ops = {op for _, _, op in rows}
    return "mix" if ops == {"+", "-"} else "add" if ops == {"+"} else "sub"


def encoded(digits, rows):
    task = ArithmeticTask(task_for(rows), digits)
    texts = [question(x, y, op, digits) for x, y, op in rows]
    return task, texts, task.encode(texts)


@FAST
@given(batches())
def test_encode_decode_round_trip_and_gold_answers(batch):
    digits, rows = batch
    task, texts, tokens = encoded(digits, rows)
    assert tokens.shape == (len(rows), 3 * digits + 4) == (len(rows), task.n_ctx)
    assert task.decode(tokens) == texts
    assert task.decode(task.encode([t[: 2 * digits + 2] for t in texts])) == texts  # answer filled in
    assert task.decode(task.answers(tokens)) == [t[2 * digits + 2 :] for t in texts]
    assert task.answers(tokens).shape == (len(rows), task.n_answer)


@FAST
@given(batches())
def test_every_variable_matches_the_reference(batch):
    digits, rows = batch
    task, _, tokens = encoded(digits, rows)
    every = task.all_variables(tokens)
    want = [variables(x, y, op, digits) for x, y, op in rows]
    assert set(every) == set(VARIABLES)
    for name, var in VARIABLES.items():
        assert every[name].tolist() == [w[name] for w in want], name
        n = var.digit_range(digits)[-1] if var.per_digit else None
        assert torch.equal(task.variable(tokens, name, n), every[name] if n is None else every[name][:, n])


@FAST
@given(batches())
def test_classes_match_the_reference(batch):
    digits, rows = batch
    task, _, tokens = encoded(digits, rows)
    got = [task.class_names[i] for i in task.classes(tokens).tolist()]
    assert got == [class_name(x, y, op, digits) for x, y, op in rows]


@FAST
@given(batches(ops="+-"), st.data())
def test_causal_model_with_overrides_matches_the_reference(batch, data):
    digits, rows = batch
    task = ArithmeticTask("mix", digits)
    tokens = task.encode([question(x, y, op, digits) for x, y, op in rows])
    assert task.decode(task.causal_answer(tokens, {})) == task.decode(task.answers(tokens))
    keys = [(name, n) for name, var in VARIABLES.items() for n in (var.digit_range(digits) if var.per_digit else [None])]
    cascades = [k for k in keys if k[0] in ("SV", "MV", "NV")]  # the overrides that travel furthest
    chosen = data.draw(st.lists(st.sampled_from(keys) | st.sampled_from(cascades), min_size=1, max_size=3, unique=True))
    overrides = {
        key: data.draw(st.lists(st.integers(0, VARIABLES[key[0]].values - 1), min_size=len(rows), max_size=len(rows)))
        for key in chosen
    }
    got = task.decode(task.causal_answer(tokens, {k: torch.tensor(v) for k, v in overrides.items()}))
    want = [causal_answer(x, y, op, digits, {k: v[i] for k, v in overrides.items()}) for i, (x, y, op) in enumerate(rows)]
    assert got == want


def test_forcing_a_carry_cascades_through_sum9_columns():
    task = ArithmeticTask("add", 6)
    tokens = task.encode(["004999+005000="])  # columns 0..2 sum to 9, no carry anywhere
    assert task.decode(task.answers(tokens)) == ["+0009999"]
    forced = task.causal_answer(tokens, {("ST", 0): 2})
    assert task.decode(forced) == ["+0010009"]  # the carry ripples through the three sum-9 columns
    assert task.decode(task.causal_answer(tokens, {("MT", 0): 2})) == ["+0009999"]  # other op's variable


def test_scalar_override_and_names():
    task = ArithmeticTask("sub", 3)
    assert (task.name, task.n_ctx, task.d_vocab, task.n_answer) == ("sub_d3", 13, 15, 5)
    tokens = task.encode(["100-200=", "300-100="])
    assert task.decode(task.causal_answer(tokens, {("SGN", None): 0})) == ["+0900", "+0200"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: ArithmeticTask("add", 0), ["0", "1 to 20"]),
        (lambda: ArithmeticTask("add", 21), ["21", "1 to 20"]),
        (lambda: ArithmeticTask("mul", 3), ["'mul'", "add, mix, sub"]),
        (lambda: ArithmeticTask("add", 3).variable(torch.zeros(1, 13, dtype=torch.long), "SX", 1), ["'SX'", "SA", "NV"]),
        (lambda: ArithmeticTask("add", 3).variable(torch.zeros(1, 13, dtype=torch.long), "SA", 3), ["SA(3)", "2"]),
        (lambda: ArithmeticTask("add", 3).variable(torch.zeros(1, 13, dtype=torch.long), "OPR", 0), ["OPR", "None"]),
        (lambda: ArithmeticTask("add", 3).variable(torch.zeros(1, 12, dtype=torch.long), "SA", 0), ["[B, 13]", "(1, 12)"]),
        (lambda: ArithmeticTask("add", 3).encode(["12+345="]), ["'12+345='", "3-digit"]),
        (lambda: ArithmeticTask("add", 3).encode(["123-345="]), ["'123-345='", "+"]),
        (lambda: ArithmeticTask("add", 3).encode(["123+345=+0469"]), ["wrong answer", "+0468"]),
        (lambda: ArithmeticTask("add", 3).causal_answer(torch.zeros(1, 13, dtype=torch.long), {("ST", 0): 3}), ["ST", "0..2"]),
    ],
)
def test_bad_input_names_the_value_and_the_allowed_ones(make, words):
    with pytest.raises(TaskError) as err:
        make()
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("op", ["add", "sub", "mix"])
def test_siblings_are_the_other_parts_of_a_tricase(op):
    """Siblings: the other input-computed parents of a child made only of one column's such variables."""
    from circuitspec.tasks.registry import vocabulary

    voc = vocabulary(op)
    want = {"add": {"SC": "SS", "SS": "SC"}, "sub": {"MB": "MZ", "MZ": "MB", "NB": "NZ", "NZ": "NB"}}
    pairs = {**want["add"], **want["sub"]} if op == "mix" else want[op]
    for name in voc.variables:
        for n in voc.variables[name].digit_range(4) if voc.variables[name].per_digit else [None]:
            expected = ((pairs[name], n),) if name in pairs else ()
            assert voc.siblings((name, n), 4) == expected, (name, n)
