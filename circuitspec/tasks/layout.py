"""Token layout of the arithmetic task, without torch (its vocabulary: ``circuitspec.vocabulary``).

The hypothesis language (``spec/``) resolves symbolic positions such as ``D'(3)``
or ``predicts A(2)`` and checks variable names through this module, so it must stay
importable without torch.

Layout for ``digits`` = n (the paper's, so its checkpoints load)::

    D(n-1) .. D(0)  OPR  D'(n-1) .. D'(0)  =  sign  A(n) .. A(0)

Index 0 of a digit is the units digit. ``n_ctx = 3n + 4`` (``vocabulary.n_ctx``).
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.errors import TaskError, unknown
from circuitspec.vocabulary import OPERATIONS, n_ctx

MAX_DIGITS = 20

# Vocabulary of 15: digits are their own tokens.
PLUS, MINUS, EQUALS, TIMES, DIVIDE = 10, 11, 12, 13, 14
D_VOCAB = 15
TOKEN_CHARS = "0123456789+-=*/"

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
        return n_ctx(self.digits)

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
