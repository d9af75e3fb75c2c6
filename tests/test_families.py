"""Hard-question families and the trainer's hard rows: exact contents, determinism, structure."""

from __future__ import annotations

import pytest
import torch

from circuitspec.tasks import ArithmeticTask
from circuitspec.tasks.families import families, family_names


def _by_name(op, digits, **kw):
    return {f.name: f for f in families(op, digits, **kw)}


def _value(digits):
    return sum(d * 10**i for i, d in enumerate(digits))


def test_exhaustive_families_hold_every_question():
    fams = _by_name("add", 6, size=2000)
    assert len(fams["single"]) == 100 and fams["single"].exhaustive
    assert len(fams["sparse"]) == (9 * 6 + 1) ** 2 and fams["sparse"].exhaustive
    assert len(set(fams["sparse"].rows)) == len(fams["sparse"])
    for x, y in fams["sparse"].rows:
        assert sum(d != 0 for d in x) <= 1 and sum(d != 0 for d in y) <= 1
    assert all(9 in (min(x), min(y)) or x == (9,) * 6 or y == (9,) * 6 for x, y in fams["nines"].rows)
    assert ((0, 0, 5, 0, 0, 0), (0, 0, 5, 0, 0, 0)) in fams["sparse"].rows  # the 000500+000500


def test_families_are_deterministic_and_seeded():
    a, b = _by_name("sub", 5, size=500, seed=1), _by_name("sub", 5, size=500, seed=1)
    assert {n: f.rows for n, f in a.items()} == {n: f.rows for n, f in b.items()}
    c = _by_name("sub", 5, size=500, seed=2)
    assert a["sparse2"].rows != c["sparse2"].rows and a["sparse"].rows == c["sparse"].rows


def test_cascade_rows_have_a_carry_then_k_ties_at_every_place():
    """With the other columns zero, a carry at c followed by k sum-9 columns is a class S(k+1) question."""
    task = ArithmeticTask("add", 5)
    fam = _by_name("add", 5, size=3000)["cascade"]
    tokens = torch.stack([task.assemble(torch.tensor([x]), torch.tensor([y]), torch.tensor([0]))[0] for x, y in fam.rows])
    classes = [task.class_names[i] for i in task.classes(tokens).tolist()]
    seen = set()
    for (x, y), cls in zip(fam.rows, classes):
        pairs = [(a, b) for a, b in zip(x, y) if (a, b) != (0, 0)]
        start = next(i for i, (a, b) in enumerate(zip(x, y)) if a + b >= 10)
        k = len(pairs) - 1
        assert all(a + b == 9 for a, b in pairs[1:]) and cls == f"S{min(k + 1, 5)}"
        seen.add((start, k))
    assert seen == {(c, k) for c in range(5) for k in range(5 - c)}


def test_subtraction_families():
    fams = _by_name("sub", 6, size=600)
    assert set(fams) == set(family_names("sub"))
    assert all(x == y for x, y in fams["equal"].rows)
    for i, (x, y) in enumerate(fams["leading_zeros"].rows):
        assert abs(_value(x) - _value(y)) < 10 ** (i % 6)
    for x, y in fams["cascade"].rows:  # a borrow, then equal digits, the rest zero
        start = next(i for i, (a, b) in enumerate(zip(x, y)) if a < b)
        assert all(a == b for a, b in list(zip(x, y))[start + 1 :] if (a, b) != (0, 0))
    assert family_names("mix")[:2] == ["add.single", "add.sparse"] and "sub.equal" in family_names("mix")


def test_hard_rows_are_sparse_or_cascades_and_off_by_default():
    task = ArithmeticTask("add", 6)
    plain = task.generate(256, torch.Generator().manual_seed(3), enrich=True)
    assert torch.equal(plain, task.generate(256, torch.Generator().manual_seed(3), enrich=True, hard_p=0.0))
    hard = task.generate(2000, torch.Generator().manual_seed(3), hard_p=1.0)
    zeros = (hard[:, :13] == 0).float().mean()
    assert zeros > 0.5  # uniform operands are 10% zeros
    classes = task.classes(hard)
    assert (classes >= 3).float().mean() > 0.1  # S3+ is under 1% of uniform questions
    assert torch.equal(hard[:, -task.n_answer :], task.answers(hard))


def test_the_recipe_records_the_hard_fraction_and_its_command():
    from circuitspec.errors import ModelError
    from circuitspec.models.training import plan

    card = plan("add_d6_l2_h3_t4K_s5", hard_fraction=0.25)
    assert card.recipe.hard_fraction == 0.25 and "--hard-fraction 0.25" in card.recipe.command
    assert "--hard-fraction" not in plan("add_d6_l2_h3_t4K_s5").recipe.command
    with pytest.raises(ModelError):
        plan("add_d6_l2_h3_t4K_s5", hard_fraction=1.5)
