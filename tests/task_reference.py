"""Plain-Python reference for the arithmetic task: integers and per-column loops, no torch.

Cascades are checked against integer arithmetic on the low columns (the carry out of
column n is whether the low n+1 digits overflow), not against a copy of the fold.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

NONE, UNCERTAIN, CARRY = 0, 1, 2


def column(value: int, n: int) -> int:
    return value // 10**n % 10


def question(x: int, y: int, op: str, digits: int) -> str:
    """Paper notation with the answer from integer arithmetic."""
    value = x + y if op == "+" else x - y
    return f"{x:0{digits}d}{op}{y:0{digits}d}=" + ("-" if value < 0 else "+") + f"{abs(value):0{digits + 1}d}"


def written(x: int, y: int, op: str, digits: int, layout: str = "paper") -> str:
    """``question`` as a layout writes it: answer digits units first (``reversed``), no sign
    (``nosign``), operand leading zeros as ``_`` (``unpadded``); the names combine with ``_``."""
    changes = set(layout.split("_")) - {"paper"}
    value = x + y if op == "+" else x - y
    pad = "_" if "unpadded" in changes else "0"
    answer = f"{abs(value):0{digits + 1}d}"
    answer = answer[::-1] if "reversed" in changes else answer
    sign = "" if "nosign" in changes else "-" if value < 0 else "+"
    return f"{x:{pad}>{digits}}{op}{y:{pad}>{digits}}=" + sign + answer


def in_layout(answer: str, layout: str) -> str:
    """A paper answer (``+0315600``) as a layout writes it (``0065130`` in reversed_nosign)."""
    changes = set(layout.split("_"))
    sign, digits = answer[0], answer[1:]
    return ("" if "nosign" in changes else sign) + (digits[::-1] if "reversed" in changes else digits)


def parse(text: str, digits: int) -> tuple[int, int, str]:
    return int(text[:digits]), int(text[digits + 1 : 2 * digits + 1]), text[digits]


def variables(x: int, y: int, op: str, digits: int) -> dict[str, object]:
    """Every variable by its definition in DOMAIN.md: lists indexed by column, or ints."""
    v: dict[str, object] = {name: [] for name in "SA SC SS ST SV MD MB MZ MT MV ND NB NZ NT NV GT".split()}
    for n in range(digits):
        a, b = column(x, n), column(y, n)
        low = 10 ** (n + 1)
        v["SA"].append((a + b) % 10)
        v["SC"].append(int(a + b >= 10))
        v["SS"].append(int(a + b == 9))
        v["ST"].append(CARRY if a + b >= 10 else UNCERTAIN if a + b == 9 else NONE)
        v["SV"].append(int(x % low + y % low >= low))
        v["MD"].append((a - b) % 10)
        v["MB"].append(int(a < b))
        v["MZ"].append(int(a == b))
        v["MT"].append(CARRY if a < b else UNCERTAIN if a == b else NONE)
        v["MV"].append(int(x % low < y % low))
        v["ND"].append((b - a) % 10)
        v["NB"].append(int(b < a))
        v["NZ"].append(int(a == b))
        v["NT"].append(CARRY if b < a else UNCERTAIN if a == b else NONE)
        v["NV"].append(int(y % low < x % low))
        v["GT"].append(int(a > b))
    answer = abs(x + y if op == "+" else x - y)
    v["A"] = [column(answer, n) for n in range(digits + 1)]
    v["OPR"] = int(op == "-")
    v["SGN"] = int(x < y)
    return v


def class_name(x: int, y: int, op: str, digits: int) -> str:
    """S0..S5 / M0..M4 / N1..N4 from the longest carry (borrow) run, by direct search."""

    def longest(start, tie):
        best = 0
        for i in range(digits):
            if start(i):
                length = 1
                while i + length < digits and tie(i + length):
                    length += 1
                best = max(best, length)
        return best

    cx, cy = (lambda i: column(x, i)), (lambda i: column(y, i))
    if op == "+":
        return f"S{min(5, longest(lambda i: cx(i) + cy(i) >= 10, lambda i: cx(i) + cy(i) == 9))}"
    if x >= y:
        return f"M{min(4, longest(lambda i: cx(i) < cy(i), lambda i: cx(i) == cy(i)))}"
    return f"N{max(1, min(4, longest(lambda i: cy(i) < cx(i), lambda i: cx(i) == cy(i))))}"


def causal_answer(x: int, y: int, op: str, digits: int, overrides: dict) -> str:
    """Answer (sign and digits) of the paper's algorithm with variables forced, one column at a time."""
    base = variables(x, y, op, digits)
    v = {k: (list(val) if isinstance(val, list) else val) for k, val in base.items()}

    def force(name, n=None):
        if (name, n) in overrides:
            if n is None:
                v[name] = overrides[(name, n)]
            else:
                v[name][n] = overrides[(name, n)]

    for name in "SA SC SS MD MB MZ ND NB NZ GT".split():
        for n in range(digits):
            force(name, n)
    for family, (c, t) in {"S": ("SC", "SS"), "M": ("MB", "MZ"), "N": ("NB", "NZ")}.items():
        for n in range(digits):
            v[f"{family}T"][n] = CARRY if v[c][n] else UNCERTAIN if v[t][n] else NONE
            force(f"{family}T", n)
        carry = 0
        for n in range(digits):
            tri = v[f"{family}T"][n]
            carry = carry if tri == UNCERTAIN else int(tri == CARRY)
            v[f"{family}V"][n] = carry
            force(f"{family}V", n)
            carry = v[f"{family}V"][n]
    force("OPR")
    negative = 0
    for n in range(digits):
        if not v["MZ"][n]:
            negative = 1 - v["GT"][n]
    v["SGN"] = negative
    force("SGN")
    digits_out = []
    for n in range(digits + 1):
        if v["OPR"] == 0:
            below = v["SV"][n - 1] if n else 0
            digit = v["SV"][digits - 1] if n == digits else (v["SA"][n] + below) % 10
        else:
            fam = "N" if v["SGN"] else "M"
            below = v[f"{fam}V"][n - 1] if n else 0
            digit = 0 if n == digits else (v[f"{fam}D"][n] - below) % 10
        digits_out.append(overrides.get(("A", n), digit))
    sign = "-" if v["OPR"] == 1 and v["SGN"] == 1 else "+"
    return sign + "".join(str(d) for d in reversed(digits_out))


@st.composite
def operands(draw, digits: int) -> tuple[int, int]:
    """Operand pairs biased to the edge cases: zeros, nines, equal, negative, maximal cascades."""
    top = 10**digits
    x = draw(st.integers(0, top - 1))
    kind = draw(st.sampled_from(["random", "equal", "sum9", "max_carry", "max_borrow", "zeros", "nines", "negative"]))
    if kind == "random":
        return x, draw(st.integers(0, top - 1))
    if kind == "equal":
        return x, x
    if kind == "sum9":
        return x, top - 1 - x
    if kind == "max_carry":  # x + y = 10**digits: a carry at the bottom, sum-9 columns above
        x = max(x, 1)
        return x, top - x
    if kind == "max_borrow":  # 10**(digits-1) - 1: a borrow cascading through every column
        return top // 10, 1
    if kind == "zeros":
        return 0, 0
    if kind == "nines":
        return top - 1, top - 1
    return min(x, top - 2), draw(st.integers(min(x, top - 2) + 1, top - 1))


@st.composite
def batches(draw, ops: str = "+-", max_digits: int = 20, max_rows: int = 12):
    """(digits, [(x, y, op), ...]) at one digit count."""
    digits = draw(st.integers(1, max_digits))
    rows = draw(st.lists(st.tuples(operands(digits), st.sampled_from(ops)), min_size=1, max_size=max_rows))
    return digits, [(x, y, op) for (x, y), op in rows]


def random_questions(rng: random.Random, digits: int, n: int, ops: str) -> list[tuple[int, int, str]]:
    return [(rng.randrange(10**digits), rng.randrange(10**digits), rng.choice(ops)) for _ in range(n)]
