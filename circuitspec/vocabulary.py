"""The one vocabulary of circuitspec, without torch: every layer reads these names from here.

The arithmetic world (operations, question classes, column types, sub-task variables, the
token count of a question), the text form of a variable key, the kinds of site (the engine's,
where an intervention lands, and a spec node's, where the matcher may place it), and the one
record of a model's shape. The hypothesis language (``spec/``) must stay importable without
torch, so nothing here imports it.

>>> n_ctx(6), digits_for(22), digits_for(23)
(22, 6, None)
>>> key_text(("SA", 3)), key_text(("OPR", None))
('SA(3)', 'OPR')
>>> QUESTION_CLASSES["sub"][:3]
('M0', 'M1', 'M2')
>>> zoo_shape("add", 6, 2, 3).d_mlp
512
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from circuitspec.errors import TaskError, unknown

# ---- operations, classes, column types ------------------------------------------------------

OPERATIONS = ("add", "sub", "mix")
Op = Literal["add", "sub", "mix"]

ADD_CLASSES = tuple(f"S{k}" for k in range(6))
SUB_CLASSES = tuple(f"M{k}" for k in range(5)) + tuple(f"N{k}" for k in range(1, 5))
QUESTION_CLASSES: dict[str, tuple[str, ...]] = {"add": ADD_CLASSES, "sub": SUB_CLASSES, "mix": ADD_CLASSES + SUB_CLASSES}
# The top class of each family (S5, M4, N4) is open: "a cascade this long or longer".
OPEN_CLASS = {"S": 5, "M": 4, "N": 4}
"""Question complexity classes per operation (length of the longest carry / borrow cascade)."""

NONE, UNCERTAIN, CARRY = 0, 1, 2
COLUMN_TYPES = ("none", "uncertain", "carry")
"""TriCase of a digit column: no carry (borrow), uncertain (a sum-9 / equal-digit tie), carry."""


def n_ctx(digits: int) -> int:
    """Tokens of a question with ``digits``-digit operands: D.. OPR D'.. = sign A(digits)..A(0)."""
    return 3 * digits + 4


def digits_for(context: int) -> int | None:
    """The digit count whose questions take ``context`` tokens (``n_ctx``'s inverse), or None."""
    digits, rest = divmod(context - 4, 3)
    return digits if rest == 0 and digits >= 1 else None


# ---- variables ------------------------------------------------------------------------------

VarKey = tuple[str, int | None]
"""A variable instance: ``("SA", 3)`` is SA_3, ``("OPR", None)`` a variable without a column."""


def key_text(key: VarKey) -> str:
    """The text form of a variable key, as specs, verdicts and messages write it: ``SA(3)``."""
    name, n = key
    return name if n is None else f"{name}({n})"


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


# ---- sites ----------------------------------------------------------------------------------

SITE_KINDS = ("head", "mlp", "neurons", "resid")
"""Kinds of engine site: where an intervention lands (``P16.L0.H1``, ``P16.L1.MLP``, ...)."""
SiteKind = Literal["head", "mlp", "neurons", "resid"]

NODE_SITE_KINDS = ("head", "mlp", "neurons", "any")
"""Kinds of site a spec node may be placed on (``site:``); ``any`` is a head or an MLP."""
NodeSiteKind = Literal["head", "mlp", "neurons", "any"]


# ---- the shape of a model -------------------------------------------------------------------

DEFAULT_WIDTH = 128
"""d_model of the shipped zoo (the paper's is 510); d_mlp = 4 * width, d_head = width / 4."""


@dataclass(frozen=True)
class ModelShape:
    """A model's shape: its task (operation, digits) and architecture sizes.

    The one shape record: cards (``ModelCard.shape``), the engine (``Engine.shape``), spec
    expansion and site checks all use it.
    """

    op: str
    digits: int
    n_layers: int
    n_heads: int
    n_ctx: int
    d_mlp: int
    d_model: int
    d_head: int
    layout: str | None = None  # the task's token layout (None: its default, the paper's for arithmetic)

    @classmethod
    def from_config(cls, cfg, *, op: str, digits: int, layout: str | None = None) -> "ModelShape":
        """From a TransformerLens config (the sizes) and the task the model answers (op, digits, layout).
        An attention-only model has ``d_mlp`` 0: it has no MLP sites."""
        sizes = {k: int(getattr(cfg, k)) for k in ("n_layers", "n_heads", "n_ctx", "d_model", "d_head")}
        sizes["d_mlp"] = 0 if getattr(cfg, "attn_only", False) else int(cfg.d_mlp)
        return cls(op=op, digits=digits, layout=layout, **sizes)

    @property
    def text(self) -> str:
        """``add d6 l2 h3`` (``add reversed d6 l2 h3``): how messages name a shape."""
        layout = f" {self.layout}" if self.layout not in (None, "paper") else ""
        return f"{self.op}{layout} d{self.digits} l{self.n_layers} h{self.n_heads}"


def zoo_shape(op: str, digits: int, n_layers: int, n_heads: int, *, width: int = DEFAULT_WIDTH, d_head: int | None = None) -> ModelShape:
    """The shape of a zoo model with these numbers (the sizes ``zoo train`` uses by default)."""
    return ModelShape(
        op=op,
        digits=digits,
        n_layers=n_layers,
        n_heads=n_heads,
        n_ctx=n_ctx(digits),
        d_mlp=4 * width,
        d_model=width,
        d_head=d_head if d_head is not None else max(1, width // 4),
    )
