"""Token layout and variable vocabulary of the arithmetic task, without torch.

The hypothesis language (``spec/``) resolves symbolic positions such as ``D'(3)``
or ``predicts A(2)`` and checks variable names through this module, so it must stay
importable without torch.

Layout for ``digits`` = n (the paper's, so its checkpoints load)::

    D(n-1) .. D(0)  OPR  D'(n-1) .. D'(0)  =  sign  A(n) .. A(0)

Index 0 of a digit is the units digit. ``n_ctx = 3n + 4``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from circuitspec.errors import TaskError, unknown

MAX_DIGITS = 20
OPERATIONS = ("add", "sub", "mix")

# Vocabulary of 15: digits are their own tokens.
PLUS, MINUS, EQUALS, TIMES, DIVIDE = 10, 11, 12, 13, 14
D_VOCAB = 15
TOKEN_CHARS = "0123456789+-=*/"

Op = Literal["add", "sub", "mix"]


@dataclass(frozen=True)
class Variable:
    """A sub-task variable of the paper's algorithms.

    ``per_digit``: indexed by a digit column n (``SA(n)``); ``values``: how many values
    it takes; ``ops``: the operations whose algorithm uses it; ``extra_column``: the
    digit range includes n = digits (answer digits have one more column).
    """

    name: str
    meaning: str
    values: int
    ops: tuple[str, ...]
    per_digit: bool = True
    extra_column: bool = False

    def digit_range(self, digits: int) -> range:
        if not self.per_digit:
            return range(0)
        return range(digits + 1 if self.extra_column else digits)


_ADD, _SUB = ("add",), ("sub",)
_TRI = "0 = no carry/borrow, 1 = uncertain, 2 = carry/borrow"

VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("SA", "Base Add: (D_n + D'_n) mod 10", 10, _ADD),
        Variable("SC", "Carry One: D_n + D'_n >= 10", 2, _ADD),
        Variable("SS", "Sum 9: D_n + D'_n == 9", 2, _ADD),
        Variable("ST", f"TriCase of column n's sum ({_TRI})", 3, _ADD),
        Variable("SV", "cascaded carry out of column n", 2, _ADD),
        Variable("MD", "Base Diff: (D_n - D'_n) mod 10", 10, _SUB),
        Variable("MB", "Borrow One: D_n < D'_n", 2, _SUB),
        Variable("MZ", "Make Zero: D_n == D'_n", 2, _SUB),
        Variable("MT", f"TriCase of borrow for D - D' ({_TRI})", 3, _SUB),
        Variable("MV", "cascaded borrow out of column n for D - D'", 2, _SUB),
        Variable("ND", "Neg Diff: (D'_n - D_n) mod 10", 10, _SUB),
        Variable("NB", "Borrow One for D' - D: D'_n < D_n", 2, _SUB),
        Variable("NZ", "Make Zero for D' - D: D'_n == D_n", 2, _SUB),
        Variable("NT", f"TriCase of borrow for D' - D ({_TRI})", 3, _SUB),
        Variable("NV", "cascaded borrow out of column n for D' - D", 2, _SUB),
        Variable("GT", "D_n > D'_n", 2, _SUB),
        Variable("A", "answer digit n", 10, _ADD + _SUB, extra_column=True),
        Variable("OPR", "operator: 0 = '+', 1 = '-'", 2, _ADD + _SUB, per_digit=False),
        Variable("SGN", "answer sign: 0 = '+', 1 = '-'", 2, _SUB, per_digit=False),
    ]
}


def variable(name: str) -> Variable:
    """Look up a variable by name, with a 'did you mean' error for unknown names."""
    try:
        return VARIABLES[name]
    except KeyError:
        raise unknown("variable", name, VARIABLES, TaskError) from None


def check_digits(digits: int) -> int:
    if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= MAX_DIGITS:
        raise TaskError(
            f"digits must be an integer from 1 to {MAX_DIGITS}, got {digits!r}",
            hint=f"use --digits N with 1 <= N <= {MAX_DIGITS}",
        )
    return digits


def check_op(op: str) -> str:
    if op not in OPERATIONS:
        raise unknown("operation", op, OPERATIONS, TaskError)
    return op


@dataclass(frozen=True)
class Layout:
    """Where each token sits for a given number of digits."""

    digits: int

    def __post_init__(self) -> None:
        check_digits(self.digits)

    @property
    def n_ctx(self) -> int:
        return 3 * self.digits + 4

    @property
    def opr(self) -> int:
        return self.digits

    @property
    def equals(self) -> int:
        return 2 * self.digits + 1

    @property
    def sign(self) -> int:
        return 2 * self.digits + 2

    def d(self, n: int) -> int:
        """Position of the first operand's digit n (0 = units)."""
        self._check_column(n, self.digits, "D")
        return self.digits - 1 - n

    def d_prime(self, n: int) -> int:
        """Position of the second operand's digit n."""
        self._check_column(n, self.digits, "D'")
        return 2 * self.digits - n

    def a(self, n: int) -> int:
        """Position of answer digit n (n = digits is the top digit)."""
        self._check_column(n, self.digits + 1, "A")
        return 3 * self.digits + 3 - n

    def predicts(self, n: int) -> int:
        """Position whose logits predict answer digit n (the token before it)."""
        return self.a(n) - 1

    @property
    def answer_positions(self) -> list[int]:
        """Positions of the answer tokens (sign, then A(digits) .. A(0))."""
        return list(range(self.sign, self.n_ctx))

    @property
    def answer_labels(self) -> list[str]:
        """Paper labels of the answer tokens, aligned with ``answer_positions``."""
        return ["sign"] + [f"A{n}" for n in range(self.digits, -1, -1)]

    def label(self, position: int) -> str:
        """Paper label of a token position: D5, OPR, D'0, =, A7 (the sign) .. A0."""
        n = self.digits
        if not 0 <= position < self.n_ctx:
            raise TaskError(f"position {position} is outside 0..{self.n_ctx - 1} for {n} digits")
        if position < n:
            return f"D{n - 1 - position}"
        if position == n:
            return "OPR"
        if position <= 2 * n:
            return f"D'{2 * n - position}"
        if position == self.equals:
            return "="
        return f"A{3 * n + 3 - position}"

    def _check_column(self, n: int, limit: int, what: str) -> None:
        if not 0 <= n < limit:
            raise TaskError(
                f"{what}({n}) does not exist with {self.digits} digits",
                hint=f"{what}(n) needs 0 <= n <= {limit - 1}",
            )
