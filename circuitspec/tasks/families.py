"""Hard-question families: structured questions that uniform sampling almost never draws.

Uniform questions rarely have many zero digits, and a carry (borrow) followed by a
run of sum-9 (equal-digit) columns at a given place is ~10x rarer per extra column,
so a model can score 3 failures per million on uniform questions and still answer
``000500+000500`` wrong. Each family here is a fixed set of questions: exhaustive
where small, otherwise sampled from ``random.Random(seed)``, so the same (op,
digits, size, seed) always gives the same questions. Pure Python, no torch: a
question is ``(x, y)``, two digit tuples listed units first (``x[n]`` is D_n).

Families (each for '+' and for '-'; subtraction adds ``equal`` and ``leading_zeros``):

- ``single``: both operands one digit (all 100).
- ``sparse``: each operand has at most one non-zero digit, anywhere (all of them).
- ``sparse2``: each operand has at most two non-zero digits (sampled).
- ``nines``: one operand all nines, the other sparse (all of them).
- ``cascade``: a carry (borrow) at column c, then k sum-9 (equal) columns above it,
  every other digit zero; every (c, k), exhaustive per cell where it fits.
- ``cascade_random``: the same cells with every other column uniform (sampled).
- ``equal``: D = D' (subtraction; exhaustive when 10^digits fits the size).
- ``leading_zeros``: |D - D'| below 10^m for every m < digits (subtraction, sampled).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from circuitspec.errors import TaskError

Digits = tuple[int, ...]  # units first
Row = tuple[Digits, Digits]

DEFAULT_SIZE = 20_000  # questions per sampled family
DEFAULT_SEED = 20240301

_CARRY = {"add": [(a, b) for a in range(10) for b in range(10) if a + b >= 10], "sub": [(a, b) for a in range(10) for b in range(10) if a < b]}
_TIE = {"add": [(a, 9 - a) for a in range(10)], "sub": [(a, a) for a in range(10)]}
ADD_FAMILIES = ["single", "sparse", "sparse2", "nines", "cascade", "cascade_random"]
SUB_FAMILIES = ADD_FAMILIES + ["equal", "leading_zeros"]


@dataclass(frozen=True)
class Family:
    """One family's questions for one operation (``op`` is 'add' or 'sub')."""

    name: str
    op: str
    exhaustive: bool
    rows: tuple[Row, ...]

    def __len__(self) -> int:
        return len(self.rows)


def family_names(op: str) -> list[str]:
    """Names as a model of ``op`` reports them (mixed models: ``add.sparse``, ``sub.equal`` ...)."""
    if op == "mix":
        return [f"add.{n}" for n in ADD_FAMILIES] + [f"sub.{n}" for n in SUB_FAMILIES]
    if op in ("add", "sub"):
        return list(ADD_FAMILIES if op == "add" else SUB_FAMILIES)
    raise TaskError(f"no question families for operation {op!r}", hint="use add, sub or mix")


def families(op: str, digits: int, *, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Family]:
    """Every family for a model of ``op`` ('add', 'sub' or 'mix') with ``digits`` digits.

    ``size`` caps a sampled family (and decides when a family is small enough to be
    exhaustive); each family draws from its own generator, seeded from ``seed`` and
    its name, so adding a family never changes another one's questions.
    """
    if not isinstance(size, int) or size < 1:
        raise TaskError(f"family size must be a positive integer, got {size!r}")
    names = family_names(op)
    out = []
    for full in names:
        fop, name = full.split(".") if "." in full else (op, full)
        rng = random.Random(f"{seed}:{fop}:{digits}:{name}")
        exhaustive, rows = _BUILDERS[name](fop, digits, size, rng)
        out.append(Family(full, fop, exhaustive, tuple(rows)))
    return out


def _pad(digits: int, cols: dict[int, int]) -> Digits:
    return tuple(cols.get(i, 0) for i in range(digits))


def _sparse_operands(digits: int) -> list[Digits]:
    return [_pad(digits, {})] + [_pad(digits, {i: a}) for i in range(digits) for a in range(1, 10)]


def _single(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    return True, [(_pad(digits, {0: a}), _pad(digits, {0: b})) for a in range(10) for b in range(10)]


def _sparse(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    ops = _sparse_operands(digits)
    return True, [(x, y) for x in ops for y in ops]


def _two_nonzero(digits: int, rng: random.Random) -> Digits:
    cols = rng.sample(range(digits), min(2, digits))
    return _pad(digits, {c: rng.randrange(10) for c in cols})


def _sparse2(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    return False, [(_two_nonzero(digits, rng), _two_nonzero(digits, rng)) for _ in range(size)]


def _nines(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    nines = (9,) * digits
    rows = [(nines, y) for y in _sparse_operands(digits)] + [(y, nines) for y in _sparse_operands(digits)]
    return True, list(dict.fromkeys(rows))


def _cascade_cells(digits: int) -> list[tuple[int, int]]:
    return [(c, k) for c in range(digits) for k in range(digits - c)]


def _cascade(op: str, digits: int, size: int, rng: random.Random, *, fill=None) -> tuple[bool, list[Row]]:
    """Every (start column c, run length k) cell, ``size // cells`` questions each (exhaustive when it fits)."""
    cells = _cascade_cells(digits)
    per_cell = max(1, size // len(cells))
    rows, exhaustive = [], fill is None
    for c, k in cells:
        total = len(_CARRY[op]) * 10**k
        if fill is None and total <= per_cell:
            choices = itertools.product(_CARRY[op], *([_TIE[op]] * k))
        else:
            exhaustive = False
            choices = ([rng.choice(_CARRY[op])] + [rng.choice(_TIE[op]) for _ in range(k)] for _ in range(per_cell))
        for pairs in choices:
            x = [fill(rng) if fill else 0 for _ in range(digits)]
            y = [fill(rng) if fill else 0 for _ in range(digits)]
            for i, (a, b) in enumerate(pairs):
                x[c + i], y[c + i] = a, b
            rows.append((tuple(x), tuple(y)))
    return exhaustive, rows


def _cascade_random(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    return _cascade(op, digits, size, rng, fill=lambda r: r.randrange(10))


def _equal(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    if 10**digits <= size:
        values = range(10**digits)
    else:
        values = (rng.randrange(10**digits) for _ in range(size))
    rows = [(_digits_of(v, digits),) * 2 for v in values]
    return 10**digits <= size, rows


def _leading_zeros(op: str, digits: int, size: int, rng: random.Random) -> tuple[bool, list[Row]]:
    """|D - D'| < 10^m, m = 0 .. digits-1 in turn, the sign drawn at random."""
    rows, top = [], 10**digits
    for i in range(size):
        m = i % digits
        x = rng.randrange(top)
        delta = rng.randrange(10**m)
        y = x - delta if x - delta >= 0 and (x + delta >= top or rng.random() < 0.5) else x + delta
        rows.append((_digits_of(x, digits), _digits_of(y, digits)))
    return False, rows


def _digits_of(value: int, digits: int) -> Digits:
    return tuple(value // 10**i % 10 for i in range(digits))


_BUILDERS = {
    "single": _single,
    "sparse": _sparse,
    "sparse2": _sparse2,
    "nines": _nines,
    "cascade": _cascade,
    "cascade_random": _cascade_random,
    "equal": _equal,
    "leading_zeros": _leading_zeros,
}
