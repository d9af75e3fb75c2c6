"""Token layout of the arithmetic task, without torch (its vocabulary: ``circuitspec.vocabulary``).

The hypothesis language (``spec/``) resolves symbolic positions such as ``D'(3)``
or ``predicts A(2)`` and checks variable names through this module, so it must stay
importable without torch.

Layout for ``digits`` = n: the paper's (``paper``, the default, so its checkpoints load)::

    D(n-1) .. D(0)  OPR  D'(n-1) .. D'(0)  =  sign  A(n) .. A(0)

Three changes combine with it, named in this order and joined by ``_`` (``reversed_nosign``):

- ``reversed``: the answer digits units first, ``A(0) .. A(n)``, as models that emit the
  answer in the order it is computed are trained;
- ``nosign``: no sign token, ``= A(n) ..`` (addition only: a difference can be negative);
- ``unpadded``: an operand's leading zeros are the blank token ``_`` (a 16th token, no digit
  value), ``___123+_4567=``; the number 0 is ``_____0``. Every digit keeps its fixed place, so a
  batch stays one tensor and D(n) is one position; the model must tell a blank from a 0 digit
  to know a number's length. The answer keeps its n+1 digits.

Index 0 of a digit is the units digit. ``n_ctx = 3n + 4`` (``vocabulary.n_ctx``), 3n + 3 without the sign.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.errors import TaskError, unknown
from circuitspec.vocabulary import OPERATIONS, n_ctx

MAX_DIGITS = 20

# Vocabulary of 15 (the paper's): digits are their own tokens; the unpadded layouts add BLANK.
PLUS, MINUS, EQUALS, TIMES, DIVIDE, BLANK = 10, 11, 12, 13, 14, 15
D_VOCAB = 15
TOKEN_CHARS = "0123456789+-=*/_"

CHANGES = ("reversed", "nosign", "unpadded")
"""What a layout changes from the paper's, in the order its name lists them."""


def layout_name(reversed: bool = False, sign: bool = True, padded: bool = True) -> str:
    """``paper``, or the changes joined by ``_``: ``layout_name(True, False)`` is ``reversed_nosign``."""
    parts = [c for c, on in zip(CHANGES, (reversed, not sign, not padded)) if on]
    return "_".join(parts) or "paper"


LAYOUTS = tuple(layout_name(r, s, p) for p in (True, False) for s in (True, False) for r in (False, True))
SIGNED_LAYOUTS = tuple(name for name in LAYOUTS if "nosign" not in name.split("_"))
"""The layouts subtraction can use: a difference may be negative, so its answer needs the sign."""


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
    """Where each token sits for a given number of digits, in the layout ``name`` (one of LAYOUTS)."""

    digits: int
    name: str = "paper"

    def __post_init__(self) -> None:
        check_digits(self.digits)
        if self.name not in LAYOUTS:
            raise unknown("layout", self.name, LAYOUTS, TaskError)

    @property
    def reversed(self) -> bool:
        return "reversed" in self.name.split("_")

    @property
    def has_sign(self) -> bool:
        return "nosign" not in self.name.split("_")

    @property
    def padded(self) -> bool:
        return "unpadded" not in self.name.split("_")

    @property
    def d_vocab(self) -> int:
        """Tokens the layout uses: the paper's 15, and BLANK when operands are not padded."""
        return D_VOCAB if self.padded else D_VOCAB + 1

    @property
    def n_ctx(self) -> int:
        return n_ctx(self.digits) - (not self.has_sign)

    @property
    def opr(self) -> int:
        return self.digits

    @property
    def equals(self) -> int:
        return 2 * self.digits + 1

    @property
    def sign(self) -> int:
        if not self.has_sign:
            raise TaskError(f"the {self.name} layout has no sign token", hint="its answer digits follow '=' directly: name them A(n)")
        return 2 * self.digits + 2

    @property
    def first_answer(self) -> int:
        """Position of the first answer token (the sign, or the first answer digit without one)."""
        return self.equals + 1

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
        first = self.equals + 1 + self.has_sign
        return first + n if self.reversed else first + self.digits - n

    def predicts(self, n: int) -> int:
        """Position whose logits predict answer digit n (the token before it)."""
        return self.a(n) - 1

    @property
    def answer_positions(self) -> list[int]:
        """Positions of the answer tokens (sign, then the answer digits in the layout's order)."""
        return list(range(self.first_answer, self.n_ctx))

    @property
    def answer_labels(self) -> list[str]:
        """Paper labels of the answer tokens, aligned with ``answer_positions``."""
        columns = range(self.digits + 1) if self.reversed else range(self.digits, -1, -1)
        return ["sign"] * self.has_sign + [f"A{n}" for n in columns]

    def in_order(self, answer):
        """Answer digits [B, digits+1] (units first) in the layout's token order."""
        return answer if self.reversed else answer.flip(1)

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
        if self.has_sign and position == self.sign:
            return f"A{n + 1}"  # the paper's label of the sign token
        return self.answer_labels[position - self.first_answer]

    def _check_column(self, n: int, limit: int, what: str) -> None:
        if not 0 <= n < limit:
            raise TaskError(
                f"{what}({n}) does not exist with {self.digits} digits",
                hint=f"{what}(n) needs 0 <= n <= {limit - 1}",
            )
