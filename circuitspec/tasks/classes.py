"""Question complexity classes (length of the longest carry / borrow cascade).

A cascade is a carry (borrow) column followed by consecutive sum-9 (equal-digit)
columns above it; its length counts the carry column. Classes: S0..S5 (5 = 5+) for
addition, M0..M4 (4 = 4+) for subtraction with D >= D', N1..N4 for D < D' (the same
rule on D' - D, where no borrow at all counts as N1).

Long cascades are rare in uniform data (each further tie column is ~10x rarer), so
class-stratified questions are *constructed*: a column-type sampler walks the columns
from the units up, placing the class's cascade block and drawing every other column
from the natural distribution, minus the tie columns that would grow a cascade past
the class's length.
"""

from __future__ import annotations

import torch

from circuitspec.errors import TaskError, unknown
from circuitspec.vocabulary import ADD_CLASSES, CARRY, NONE, OPEN_CLASS, QUESTION_CLASSES, UNCERTAIN


def class_names(op: str) -> list[str]:
    return list(QUESTION_CLASSES[op])


def min_digits(cls: str) -> int:
    """Fewest digits a question of the class needs.

    Subtraction cascades need a column above them that absorbs the borrow (else the
    answer is negative), hence one more digit than addition's.
    """
    family, k = cls[0], int(cls[1:])
    if family == "S":
        return max(k, 1)
    return 1 if cls in ("M0", "N1") else k + 1


def available(op: str, digits: int) -> list[str]:
    return [c for c in class_names(op) if min_digits(c) <= digits]


def check_class(cls: str, op: str, digits: int) -> str:
    names = class_names(op)
    if cls not in names:
        raise unknown(f"{op} class", cls, names, TaskError)
    allowed = available(op, digits)
    if cls not in allowed:
        raise TaskError(
            f"class {cls} does not exist with {digits} digits (it needs {min_digits(cls)})",
            hint="allowed: " + ", ".join(allowed),
        )
    return cls


def longest_cascade(tri: torch.Tensor) -> torch.Tensor:
    """Length of the longest cascade per row, from tri-case codes [B, digits]."""
    run = torch.zeros_like(tri[:, 0])
    best = run.clone()
    for n in range(tri.shape[1]):
        t = tri[:, n]
        run = torch.where(t == CARRY, 1, torch.where((t == UNCERTAIN) & (run > 0), run + 1, 0))
        best = torch.maximum(best, run)
    return best


def classify(variables: dict[str, torch.Tensor]) -> torch.Tensor:
    """Index into ``vocabulary.QUESTION_CLASSES["mix"]`` per row, from the variables of ``causal.evaluate``."""
    s = longest_cascade(variables["ST"]).clamp(max=5)
    m = longest_cascade(variables["MT"]).clamp(max=4) + len(ADD_CLASSES)
    n = longest_cascade(variables["NT"]).clamp(1, 4) - 1 + len(ADD_CLASSES) + 5
    sub = torch.where(variables["SGN"] == 1, n, m)
    return torch.where(variables["OPR"] == 1, sub, s).long()


# Digit pairs (a, b) of each column type. Addition: a + b <= 8 / == 9 / >= 10.
# Subtraction a - b: a > b / a == b / a < b (no borrow / equal / borrow).
def _pair_table(kind) -> torch.Tensor:
    table = torch.zeros(3, 45, 2, dtype=torch.long)
    counts = [0, 0, 0]
    for a in range(10):
        for b in range(10):
            t = kind(a, b)
            table[t, counts[t]] = torch.tensor([a, b])
            counts[t] += 1
    return table


_ADD_PAIRS = _pair_table(lambda a, b: CARRY if a + b >= 10 else UNCERTAIN if a + b == 9 else NONE)
_SUB_PAIRS = _pair_table(lambda a, b: CARRY if a < b else UNCERTAIN if a == b else NONE)
_COUNTS = torch.tensor([45.0, 10.0, 45.0])  # pairs per type, in both tables


def pairs_of(types: torch.Tensor, op: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random digit pairs (D, D') of the given column types (any shape), uniform within a type."""
    pairs = (_SUB_PAIRS if op == "sub" else _ADD_PAIRS).to(types.device)
    pick = (torch.rand(types.shape, generator=generator, device=types.device) * _COUNTS.to(types.device)[types]).long()
    return pairs[types, pick].unbind(-1)


def construct(cls: str, digits: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Operands (units first) of ``n`` questions of class ``cls`` (checked by the caller)."""
    family, k = cls[0], int(cls[1:])
    device = generator.device
    open_class = k == OPEN_CLASS[family]
    limit = digits if open_class else k
    block = k if (family != "N" or k > 1) else 0  # N1 has no required borrow
    sub = family != "S"

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=device)

    if block:
        # Subtraction blocks are topped by a forced no-borrow column that absorbs the borrow.
        span = digits - block - (1 if sub else 0)
        start = (rand(n) * (span + 1)).long()
    else:
        start = torch.full((n,), -digits - 2, device=device)
    weights = _COUNTS.to(device)
    types, run = [], torch.zeros(n, dtype=torch.long, device=device)
    for col in range(digits):
        allowed = torch.ones(n, 3, device=device)
        allowed[:, UNCERTAIN] = ((run == 0) | (run < limit)).float()
        if limit == 0:
            allowed[:, CARRY] = 0
        cum = (weights * allowed).cumsum(1)
        t = (rand(n, 1) * cum[:, -1:] >= cum).sum(1)
        t = torch.where(col == start, CARRY, t)
        t = torch.where((col > start) & (col < start + block), UNCERTAIN, t)
        above = col == start + block
        if sub:
            t = torch.where(above, NONE, t)
        elif not open_class:
            t = torch.where(above & (t == UNCERTAIN), NONE, t)
        run = torch.where(t == CARRY, 1, torch.where((t == UNCERTAIN) & (run > 0), run + 1, 0))
        types.append(t)
    types = torch.stack(types, dim=1)

    x, y = pairs_of(types, "sub" if sub else "add", generator)
    if sub:
        x, y = _make_nonnegative(x, y, types, generator, strict=family == "N")
    if family == "N":
        x, y = y, x
    return x, y


def _make_nonnegative(x, y, types, generator, strict):
    """Ensure x >= y (x > y when ``strict``) without lengthening any cascade.

    If the highest non-equal column borrows, its cascade runs off the top and the
    answer is negative; swapping that column's digits turns the borrow into a plain
    column, which can only shorten cascades. All-equal rows get one random column
    raised when a strictly positive difference is needed.
    """
    rows, digits = x.shape
    cols = torch.arange(digits, device=x.device)
    if strict:
        flat = (types == UNCERTAIN).all(1)
        col = (torch.rand(rows, generator=generator, device=x.device) * digits).long()
        hit = flat[:, None] & (cols == col[:, None])
        low = torch.minimum(x, torch.full_like(x, 8))
        x, y = torch.where(hit, low + 1, x), torch.where(hit, low, y)
        types = torch.where(hit, NONE, types)
    top = torch.where(types != UNCERTAIN, cols, -1).max(1).values
    flip = (cols == top[:, None]) & (types == CARRY)
    return torch.where(flip, y, x), torch.where(flip, x, y)
