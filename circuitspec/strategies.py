"""Hypothesis strategies for property tests of circuit claims.

Questions are built column by column from hypothesis primitives (never from a torch
generator), so when a claim fails hypothesis shrinks the counterexample towards the
simplest question: zeros in every column that does not matter, cascades placed at
the units. Everything prints in the paper's notation::

    >>> from hypothesis import find
    >>> find(questions("add", 6), lambda q: True)
    000000+000000=+0000000
    >>> find(questions("add", 6, classes="S3"), lambda q: True)
    000001+000999=+0001000
    >>> pair = find(counterfactual_pairs("add", 6, "SC", 1), lambda p: True)
    >>> pair.base, pair.source, pair.predicted
    (000000+000000=+0000000, 000010+000090=+0000100, '+0000100')

``questions(op, digits, classes=None)`` draws ``Question`` objects (``.tokens()``,
``.text``, ``batch(qs)`` for a token batch); ``counterfactual_pairs(op, digits,
variable, n)`` draws ``CounterfactualPair`` objects (both take ``layout=``, one of
``tasks.layout.LAYOUTS``: questions are then written and tokenised in it): a base and a source question
whose ``variable`` differs, with the answer the task's causal model predicts for the
base when that variable takes the source's value (the exact expectation of an
interchange test). ``model_answers(model, tokens)`` gives a model's teacher-forced
answer, so a property test reads::

    @given(counterfactual_pairs("add", 6, "SC", 2))
    def test_a3_ignores_column_2(pair):
        base, source = model_answers(model, pair.tokens())
        assert base[pair.answer_index(3)] == source[pair.answer_index(3)], pair
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypothesis import assume
from hypothesis import strategies as st

from circuitspec.errors import TaskError
from circuitspec.tasks.layout import TOKEN_CHARS, Layout, check_digits, check_op
from circuitspec.vocabulary import CARRY, NONE, OPEN_CLASS, UNCERTAIN, key_text
from circuitspec.vocabulary import variable as lookup_variable

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Question", "CounterfactualPair", "questions", "counterfactual_pairs", "batch", "model_answers", "parse_key"]


def _column_type(a: int, b: int, sub: bool) -> int:
    if sub:
        return CARRY if a < b else UNCERTAIN if a == b else NONE
    return CARRY if a + b >= 10 else UNCERTAIN if a + b == 9 else NONE


# Digit pairs (D_n, D'_n) of each column type, simplest first (small sum, then small D_n),
# so shrinking moves towards zeros.
_PAIRS = {
    sub: {
        t: sorted(((a, b) for a in range(10) for b in range(10) if _column_type(a, b, sub) == t), key=lambda p: (p[0] + p[1], p[0]))
        for t in (NONE, UNCERTAIN, CARRY)
    }
    for sub in (False, True)
}


@dataclass(frozen=True)
class Question:
    """One question: operands ``x``, ``y`` (non-negative ints below 10**digits) and ``op`` ('+' or '-').

    Prints in the paper's notation, ``000045+000055=+0000100`` (the answer is the gold one), as
    ``layout`` writes it (``____45+____55=0010000`` in ``reversed_nosign_unpadded``).
    """

    x: int
    y: int
    op: str
    digits: int
    layout: str = "paper"

    def __post_init__(self) -> None:
        check_digits(self.digits)
        if self.op not in ("+", "-"):
            raise TaskError(f"operator must be '+' or '-', got {self.op!r}")
        if self.op == "-" and not self.positions.has_sign:
            raise TaskError(f"the {self.layout} layout has no sign token, so it has no subtraction", hint="use a layout with the sign")
        for v in (self.x, self.y):
            if not 0 <= v < 10**self.digits:
                raise TaskError(f"operand {v} does not fit in {self.digits} digits")

    @classmethod
    def parse(cls, text: str, layout: str = "paper") -> "Question":
        """A question from the paper's notation as ``layout`` writes it; the answer part, if any, must be right."""
        m = re.fullmatch(r"(_*\d+)([+-])(_*\d+)=(.*)", text)
        if not m or len(m[1]) != len(m[3]):
            raise TaskError(f"{text!r} is not a question", hint="write it like 000045+000055= (answer optional)")
        q = cls(int(m[1].lstrip("_")), int(m[3].lstrip("_")), m[2], len(m[1]), layout)
        if f"{m[1]}{m[2]}{m[3]}=" != q.question:
            raise TaskError(f"{text!r} is not written in the {layout} layout", hint=f"write it as {q.question}")
        if m[4] and m[4] != q.answer:
            raise TaskError(f"{text!r} has a wrong answer", hint=f"the right one is {q.answer}")
        return q

    @property
    def positions(self) -> Layout:
        """Where the question's tokens sit (``tasks.layout.Layout``)."""
        return Layout(self.digits, self.layout)

    @property
    def value(self) -> int:
        return self.x + self.y if self.op == "+" else self.x - self.y

    @property
    def question(self) -> str:
        """The part before the answer: ``000045+000055=`` (``____45+____55=`` unpadded)."""
        d, pad = self.digits, "0" if self.positions.padded else "_"
        return f"{self.x:{pad}>{d}d}{self.op}{self.y:{pad}>{d}d}="

    @property
    def answer(self) -> str:
        """The answer tokens: sign, then digits+1 digits (``+0000100``), in the layout's order and with its sign or not."""
        v, lay = self.value, self.positions
        digits = f"{abs(v):0{self.digits + 1}d}"
        return ("-" if v < 0 else "+") * lay.has_sign + (digits[::-1] if lay.reversed else digits)

    @property
    def text(self) -> str:
        return self.question + self.answer

    def column(self, n: int) -> tuple[int, int]:
        """(D_n, D'_n): the digits of column n (0 = units)."""
        self.positions.d(n)  # range check
        return (self.x // 10**n) % 10, (self.y // 10**n) % 10

    def answer_digit(self, n: int) -> int:
        """A_n of the gold answer."""
        self.positions.a(n)
        return (abs(self.value) // 10**n) % 10

    def tokens(self) -> "torch.Tensor":
        """LongTensor[n_ctx] of the whole question with its gold answer."""
        import torch

        return torch.tensor([TOKEN_CHARS.index(c) for c in self.text], dtype=torch.long)

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # hypothesis' "Falsifying example" printer
        printer.text(self.text)


def batch(questions: Sequence[Question]) -> "torch.Tensor":
    """LongTensor[B, n_ctx] of questions (all with the same number of digits and layout)."""
    import torch

    if not questions:
        raise TaskError("batch of no questions")
    if len({(q.digits, q.layout) for q in questions}) != 1:
        raise TaskError("questions in one batch must have the same number of digits and the same layout")
    return torch.stack([q.tokens() for q in questions])


def _from_columns(xs: Sequence[int], ys: Sequence[int], op: str, layout: str = "paper") -> Question:
    """Question from digits listed units first."""
    return Question(sum(a * 10**i for i, a in enumerate(xs)), sum(b * 10**i for i, b in enumerate(ys)), op, len(xs), layout)


def _check_classes(op: str, digits: int, classes: str | Sequence[str] | None) -> list[str] | None:
    if classes is None:
        return None
    from circuitspec.tasks.classes import check_class

    names = [classes] if isinstance(classes, str) else list(classes)
    if not names:
        raise TaskError("classes must name at least one class")
    for cls in names:
        check_class(cls, op, digits)
        family, k = cls[0], int(cls[1:])
        if family != "S" and k >= 1 and family + str(k) != "N1" and digits < k + 1:
            # a borrow cascade needs a column above it that absorbs the borrow
            raise TaskError(f"class {cls} needs at least {k + 1} digits, got {digits}")
    return names


@st.composite
def _class_question(draw, cls: str, digits: int, layout: str) -> Question:
    """A question of class ``cls``: its cascade block placed, the other columns drawn so none grows longer."""
    family, k = cls[0], int(cls[1:])
    sub = family != "S"
    limit = None if k == OPEN_CLASS[family] else k
    forced: dict[int, int] = {}
    block = 0 if cls == "N1" else k
    if block:
        start = draw(st.integers(0, digits - block - (1 if sub else 0)))
        forced[start] = CARRY
        forced.update({c: UNCERTAIN for c in range(start + 1, start + block)})
        if sub:
            forced[start + block] = NONE  # absorbs the borrow
    elif cls == "N1":
        forced[draw(st.integers(0, digits - 1))] = NONE  # D' > D strictly
    order = [UNCERTAIN, NONE, CARRY] if sub else [NONE, UNCERTAIN, CARRY]
    xs, ys, types, run = [], [], [], 0
    for col in range(digits):
        if col in forced:
            t = forced[col]
        else:
            allowed = [
                t
                for t in order
                if not (t == CARRY and limit == 0) and not (t == UNCERTAIN and run > 0 and limit is not None and run >= limit)
            ]
            t = draw(st.sampled_from(allowed))
        run = 1 if t == CARRY else run + 1 if t == UNCERTAIN and run > 0 else 0
        a, b = draw(st.sampled_from(_PAIRS[sub][t]))
        xs.append(a)
        ys.append(b)
        types.append(t)
    if sub:
        # The highest unequal column must not borrow, else the difference is negative;
        # swapping its digits turns it into a plain column and only shortens cascades.
        top = max((c for c, t in enumerate(types) if t != UNCERTAIN), default=None)
        if top is not None and types[top] == CARRY:
            xs[top], ys[top] = ys[top], xs[top]
        if family == "N":
            xs, ys = ys, xs
    return _from_columns(xs, ys, "-" if sub else "+", layout)


def questions(
    op: str = "add", digits: int = 6, classes: str | Sequence[str] | None = None, *, layout: str = "paper"
) -> st.SearchStrategy[Question]:
    """Questions of ``op`` (add / sub / mix) with ``digits`` digits, optionally of given classes.

    Without ``classes``, every digit is drawn on its own (uniform over 0..9, shrinking to
    0), and in ``mix`` the operator too ('+' first). With ``classes`` (one name or a
    list, e.g. ``"S3"`` or ``["M2", "N1"]``) questions are constructed to have exactly
    that cascade length; ``mix`` takes S, M and N classes. ``layout``: how they are written.

    >>> from hypothesis import find
    >>> find(questions("sub", 4), lambda q: q.value < 0)
    0000-1000=-01000
    """
    _task(op, digits, layout)  # checks op, digits and that the layout fits op
    names = _check_classes(op, digits, classes)
    if names is not None:
        return st.sampled_from(names).flatmap(lambda cls: _class_question(cls, digits, layout))
    ops = {"add": ["+"], "sub": ["-"], "mix": ["+", "-"]}[op]
    column = st.lists(st.integers(0, 9), min_size=digits, max_size=digits)
    return st.builds(lambda o, xs, ys: _from_columns(xs, ys, o, layout), st.sampled_from(ops), column, column)


# ---- counterfactual pairs ------------------------------------------------------------------


def parse_key(variable: str, n: int | None = None) -> tuple[str, int | None]:
    """("SA", 3) from ``"SA(3)"``, ``"SA3"`` or ``("SA", 3)``; checks the name."""
    m = re.fullmatch(r"([A-Z]+)\(?(\d+)?\)?", variable.strip())
    if not m:
        raise TaskError(f"{variable!r} is not a variable", hint="write it like SA(3), or pass the column as n")
    name, col = m[1], m[2]
    lookup_variable(name)
    if col is not None:
        if n is not None and int(col) != n:
            raise TaskError(f"{variable!r} names column {col} but n={n}")
        n = int(col)
    return name, n


@dataclass(frozen=True)
class CounterfactualPair:
    """A base and a source question that differ in ``variable``.

    ``predicted`` is the answer (sign and digits, ``+0000200``) the causal model gives
    the base when ``variable`` takes its value from the source: what an interchange
    intervention on a node computing that variable must produce.
    """

    variable: str
    base: Question
    source: Question
    base_value: int
    source_value: int
    predicted: str

    @property
    def key(self) -> tuple[str, int | None]:
        return parse_key(self.variable)

    @property
    def digits(self) -> int:
        return self.base.digits

    def tokens(self) -> "torch.Tensor":
        """LongTensor[2, n_ctx]: base then source."""
        return batch([self.base, self.source])

    def answer_index(self, n: int) -> int:
        """Index of A_n in an answer string / answer-token row (0 is the sign, if the layout has one)."""
        lay = self.base.positions
        return lay.a(n) - lay.first_answer

    def predicted_digit(self, n: int) -> int:
        """A_n of the predicted answer."""
        return int(self.predicted[self.answer_index(n)])

    def changed_digits(self) -> list[int]:
        """The answer digits n whose predicted value differs from the base's gold answer."""
        gold = self.base.answer
        return [n for n in range(self.digits, -1, -1) if gold[self.answer_index(n)] != self.predicted[self.answer_index(n)]]

    def __str__(self) -> str:
        return (
            f"{self.variable}: base {self.base} ({self.variable}={self.base_value}), "
            f"source {self.source} ({self.variable}={self.source_value}), "
            f"predicted {self.base.question}{self.predicted}"
        )

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # hypothesis' "Falsifying example" printer
        printer.text(str(self))


_TASKS: dict[tuple[str, int, str], object] = {}


def _task(op: str, digits: int, layout: str = "paper"):
    from circuitspec.tasks.arithmetic import ArithmeticTask

    if (op, digits, layout) not in _TASKS:
        _TASKS[(op, digits, layout)] = ArithmeticTask(check_op(op), check_digits(digits), layout)
    return _TASKS[(op, digits, layout)]


def _variable_values(task, qs: Sequence[Question], key) -> list[int]:
    return task.variable(batch(qs), key[0], key[1]).tolist()


def _predictions(task, base: Question, key, values: Sequence[int]) -> list[str]:
    import torch

    tokens = base.tokens().unsqueeze(0).expand(len(values), -1).contiguous()
    answers = task.causal_answer(tokens, {key: torch.tensor(list(values), dtype=torch.long)})
    return ["".join(TOKEN_CHARS[t] for t in row) for row in answers.tolist()]


@st.composite
def _pair(draw, op: str, digits: int, key, classes, informative: bool, layout: str) -> CounterfactualPair:
    task = _task(op, digits, layout)
    name, n = key
    base = draw(questions(op, digits, classes, layout=layout))
    (base_value,) = _variable_values(task, [base], key)
    bx = [base.column(c)[0] for c in range(digits)]
    by = [base.column(c)[1] for c in range(digits)]

    if name == "OPR":
        other = "-" if base.op == "+" else "+"
        candidates = [Question(base.x, base.y, other, digits, layout)]
    elif name == "SGN":
        candidates = [Question(base.y, base.x, base.op, digits, layout)]
    else:
        top = digits - 1 if n is None else min(n, digits - 1)  # A(digits) comes from the columns below
        # Narrowest change first: every digit pair of column `top` alone, simplest first.
        candidates = []
        for a in range(10):
            for b in range(10):
                xs, ys = list(bx), list(by)
                xs[top], ys[top] = a, b
                candidates.append(_from_columns(xs, ys, base.op, layout))
        candidates.sort(key=lambda q: sum(q.column(top)) * 10 + q.column(top)[0])

    def passing(cands: list[Question]) -> list[tuple[Question, int, str]]:
        values = _variable_values(task, cands, key)
        preds = _predictions(task, base, key, values)
        return [
            (q, v, p)
            for q, v, p in zip(cands, values, preds)
            if v != base_value and (not informative or p != base.answer)
        ]

    ok = passing(candidates)
    wide = name not in ("OPR", "SGN") and draw(st.booleans())
    if ok and not wide:
        source, value, predicted = draw(st.sampled_from(ok))
    else:
        # Re-draw columns lo..top (all of them for SGN), shrinking towards the narrowest.
        assume(name != "OPR")
        top = digits - 1 if n is None or name == "SGN" else min(n, digits - 1)
        lo = 0 if name == "SGN" else top - draw(st.integers(0, top))
        xs, ys = list(bx), list(by)
        for c in range(lo, top + 1):
            xs[c], ys[c] = draw(st.integers(0, 9)), draw(st.integers(0, 9))
        found = passing([_from_columns(xs, ys, base.op, layout)])
        assume(found)
        source, value, predicted = found[0]
    return CounterfactualPair(key_text(key), base, source, base_value, value, predicted)


def counterfactual_pairs(
    op: str,
    digits: int,
    variable: str,
    n: int | None = None,
    *,
    classes: str | Sequence[str] | None = None,
    informative: bool = True,
    layout: str = "paper",
) -> st.SearchStrategy[CounterfactualPair]:
    """(base, source) pairs whose ``variable`` (column ``n``) differs, with the causal prediction.

    ``variable`` is a name with ``n`` (``"SA", 3``) or an instance (``"SA(3)"``). The
    source changes as little as possible: one digit column (the variable's own, or the
    column below an answer digit's top) unless hypothesis chooses a wider re-draw of
    the columns beneath it. ``informative`` (default) keeps only pairs for which the
    predicted answer differs from the base's gold answer, so a node that does nothing
    cannot pass an interchange test by accident. ``classes`` constrains the base; ``layout``
    writes both questions and the prediction.

    >>> from hypothesis import find
    >>> find(counterfactual_pairs("add", 3, "SA(1)"), lambda p: True)
    SA(1): base 000+000=+0000 (SA(1)=0), source 000+010=+0010 (SA(1)=1), predicted 000+000=+0010
    """
    key = _task(op, digits, layout).check_key(parse_key(variable, n))
    if key[0] == "OPR" and op != "mix":
        raise TaskError(f"OPR cannot differ in {op}: it has a single operator", hint="use op='mix'")
    names = _check_classes(op, digits, classes)
    return _pair(op, digits, key, names, informative, layout)


# ---- models --------------------------------------------------------------------------------


def model_answers(model, tokens: "torch.Tensor", layout: str | None = None) -> list[str]:
    """The model's teacher-forced answers (sign and digits, ``+0000100``) for a token batch.

    ``model`` is a ``circuitspec`` Model (or anything callable on tokens returning logits
    [B, n_ctx, d_vocab]); the token at each answer position is the argmax of the logits
    one position earlier, given the gold prefix. Plain forward pass, no hooks. ``layout``:
    the tokens' (default: the model's task's, else the paper's).
    """
    import torch

    if tokens.dim() == 1:
        tokens = tokens.unsqueeze(0)
    task_layout = getattr(getattr(model, "task", None), "layout", None)
    if layout is not None or not isinstance(task_layout, Layout):
        task_layout = Layout((tokens.shape[1] - 3) // 3, layout or "paper")  # 3n+4 tokens, 3n+3 without the sign
    with torch.no_grad():
        logits = model(tokens)
    predicted = logits[:, task_layout.first_answer - 1 : tokens.shape[1] - 1].argmax(-1)
    return ["".join(TOKEN_CHARS[t] for t in row) for row in predicted.tolist()]
