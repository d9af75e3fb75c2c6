"""Counterfactual pairs: the key differs, kept variables hold, predictions match the reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from task_reference import UNCERTAIN, batches, causal_answer, column, parse, question, variables

from circuitspec.errors import TaskError
from circuitspec.tasks import VARIABLES, ArithmeticTask


def value(vars_, key):
    name, n = key
    return vars_[name] if n is None else vars_[name][n]


def all_keys(digits):
    return [(name, n) for name, var in VARIABLES.items() for n in (var.digit_range(digits) if var.per_digit else [None])]


@settings(max_examples=60, deadline=None)
@given(batches(max_digits=8, max_rows=10), st.data())
def test_sources_differ_in_key_keep_the_rest_and_predict_exactly(batch, data):
    digits, rows = batch
    task = ArithmeticTask("mix", digits)
    base = task.encode([question(x, y, op, digits) for x, y, op in rows])
    keys = all_keys(digits)
    key = data.draw(st.sampled_from(keys))
    keep = data.draw(st.lists(st.sampled_from([k for k in keys if k != key]), max_size=2, unique=True))
    seed = data.draw(st.integers(0, 2**31))
    cf = task.counterfactuals(base, key, torch.Generator().manual_seed(seed), keep=keep)

    assert cf.key == key and torch.equal(cf.base, base)
    assert cf.source.shape == base.shape and cf.predicted.shape == (len(rows), task.n_answer)
    for i, (b, s, p) in enumerate(zip(task.decode(base), task.decode(cf.source), task.decode(cf.predicted))):
        bx, by, bop = parse(b, digits)
        sx, sy, sop = parse(s, digits)
        assert s == question(sx, sy, sop, digits)  # the source carries its own gold answer
        vb, vs = variables(bx, by, bop, digits), variables(sx, sy, sop, digits)
        assert p == causal_answer(bx, by, bop, digits, {key: value(vs, key)})
        _assert_minimal_change(key, digits, (bx, by, bop), (sx, sy, sop))
        if bool(cf.valid[i]):
            assert cf.reason[i] is None
            assert value(vs, key) != value(vb, key)
            assert all(value(vs, k) == value(vb, k) for k in keep)
            assert p != b[2 * digits + 2 :]  # informative: the prediction differs from the gold answer
        else:
            assert isinstance(cf.reason[i], str) and cf.reason[i]


def _assert_minimal_change(key, digits, base, source):
    name, n = key
    (bx, by, bop), (sx, sy, sop) = base, source
    if name == "OPR":
        assert (sx, sy) == (bx, by)
        return
    if name == "SGN":
        assert (sx, sy, sop) in {(by, bx, bop), (bx, by, bop)}
        return
    assert sop == bop
    low = 10 ** (min(n, digits - 1) + 1)
    assert sx // low == bx // low and sy // low == by // low  # nothing above column n changed


def test_valid_pairs_are_common_where_they_should_be():
    task = ArithmeticTask("add", 6)
    g = torch.Generator().manual_seed(0)
    base = task.generate(400, g)
    for key, floor in [(("SA", 2), 0.99), (("ST", 3), 0.95), (("SV", 2), 0.95), (("A", 6), 0.99)]:
        cf = task.counterfactuals(base, key, g)
        assert float(cf.valid.float().mean()) >= floor, key
    # ST decides SC: no source can change SC while keeping ST
    cf = task.counterfactuals(base, ("SC", 1), g, keep=[("ST", 1)])
    assert not bool(cf.valid.any())
    assert set(cf.reason) == {"no source with a different SC(1) keeps ST(1) equal"}
    # a subtraction variable never changes an addition answer
    cf = task.counterfactuals(base, ("MD", 1), g)
    assert not bool(cf.valid.any()) and "changes the predicted answer" in cf.reason[0]


def test_minimal_sources_prefer_one_column():
    task = ArithmeticTask("add", 6)
    g = torch.Generator().manual_seed(3)
    base = task.generate(300, g)
    cf = task.counterfactuals(base, ("SA", 3), g)
    changed = (cf.base[:, :13] != cf.source[:, :13]).sum(1)
    assert int(changed.max()) <= 2  # only D3 and D'3


def test_operator_and_sign_counterfactuals():
    mix = ArithmeticTask("mix", 3)
    base = mix.encode(["123+045=", "123-456=", "222-222="])
    cf = mix.counterfactuals(base, ("OPR", None), torch.Generator())
    assert mix.decode(cf.source) == ["123-045=+0078", "123+456=+0579", "222+222=+0444"]
    assert mix.decode(cf.predicted) == ["+0078", "+0579", "+0444"]
    cf = mix.counterfactuals(base, ("SGN", None), torch.Generator())
    assert cf.valid.tolist() == [False, True, False]
    assert mix.decode(cf.predicted)[1] == "+0667"  # 123 - 456 read with a positive sign: MD, MV branch
    assert "equal" in cf.reason[2]
    add = ArithmeticTask("add", 3)
    cf = add.counterfactuals(add.encode(["123+045="]), ("OPR", None), torch.Generator())
    assert not bool(cf.valid[0]) and "single operator" in cf.reason[0]


def test_bad_keys():
    task = ArithmeticTask("add", 3)
    base = task.generate(2, torch.Generator())
    with pytest.raises(TaskError, match="'ZZ'"):
        task.counterfactuals(base, ("ZZ", 0), torch.Generator())
    with pytest.raises(TaskError, match=r"SV\(3\)"):
        task.counterfactuals(base, ("SA", 0), torch.Generator(), keep=[("SV", 3)])


@settings(max_examples=40, deadline=None)
@given(batches(max_digits=8, max_rows=10), st.data())
def test_tie_makes_one_column_pass_the_carry_from_below(batch, data):
    digits, rows = batch
    task = ArithmeticTask("mix", digits)
    n = data.draw(st.integers(0, digits - 1))
    tied = task.tie(task.encode([question(x, y, op, digits) for x, y, op in rows]), n)
    for text, (x, y, op) in zip(task.decode(tied), rows):
        tx, ty, top = parse(text, digits)
        assert top == op and tx == x  # only D'(n) changes
        assert all(column(ty, k) == column(y, k) for k in range(digits) if k != n)
        v = variables(tx, ty, op, digits)
        assert (v["ST"] if op == "+" else v["MT"])[n] == UNCERTAIN, text
        assert text == question(tx, ty, op, digits)  # the answer is recomputed


def test_cascade_gate_names_the_tricase_of_cascaded_variables():
    task = ArithmeticTask("mix", 6)
    assert task.cascade_gate(("SV", 3)) == ("ST", 3)
    assert task.cascade_gate(("MV", 1)) == ("MT", 1) and task.cascade_gate(("NV", 5)) == ("NT", 5)
    assert task.cascade_gate(("SV", 0)) is None  # nothing below column 0
    assert task.cascade_gate(("SA", 3)) is None and task.cascade_gate(("ST", 3)) is None
    with pytest.raises(TaskError):
        task.tie(task.generate(2, torch.Generator().manual_seed(0)), 6)
