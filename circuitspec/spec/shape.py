"""Model shapes as a hypothesis sees them: building one, naming one, and ``applies_to``."""

from __future__ import annotations

from typing import Any, NamedTuple

from circuitspec.errors import SpecError, TaskError
from circuitspec.models.card import MAX_HEADS_PER_LAYER, MAX_LAYERS
from circuitspec.spec.schema import Hypothesis
from circuitspec.tasks.registry import is_builtin, vocabulary
from circuitspec.vocabulary import DEFAULT_WIDTH, ModelShape


class Applicability(NamedTuple):
    """Whether a hypothesis is about a model shape; falsy with a reason when not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok



def make_shape(
    op: str,
    digits: int,
    n_layers: int,
    n_heads: int,
    *,
    d_mlp: int | None = None,
    d_model: int = DEFAULT_WIDTH,
    d_head: int | None = None,
    n_ctx: int | None = None,
    layout: str | None = None,
) -> ModelShape:
    """A ``ModelShape`` from the numbers that matter to a hypothesis (the zoo's sizes by default:
    d_mlp = 4 * d_model, d_head = d_model / 4, as ``vocabulary.zoo_shape``)."""
    for what, v, lo in (("digits", digits, 1), ("layers", n_layers, 1), ("heads", n_heads, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise SpecError(f"{what} must be a positive integer, got {v!r}")
    if not is_builtin(op) and ":" not in str(op):
        raise SpecError(f"unknown operation {op!r}", hint="allowed: add, sub, mix, or a task class's import path")
    try:
        voc = vocabulary(op)
    except TaskError as err:
        raise SpecError(err.message, hint=err.hint) from None
    for what, v, hi in (("digits", digits, voc.max_digits), ("layers", n_layers, MAX_LAYERS), ("heads", n_heads, MAX_HEADS_PER_LAYER)):
        if v > hi:
            raise SpecError(f"{what} must be at most {hi}, got {v}")
    return ModelShape(
        op=op,
        digits=digits,
        n_layers=n_layers,
        n_heads=n_heads,
        n_ctx=layout_of(voc, digits, layout).n_ctx if n_ctx is None else n_ctx,
        d_mlp=4 * d_model if d_mlp is None else d_mlp,
        d_model=d_model,
        d_head=d_head if d_head is not None else max(1, d_model // 4),
        layout=layout,
    )


def layout_of(voc, digits: int, layout: str | None):
    try:
        return voc.layout(digits, layout)
    except TaskError as err:
        raise SpecError(err.message, hint=err.hint) from None


def as_shape(shape: Any) -> ModelShape:
    if isinstance(shape, ModelShape):
        return shape
    inner = getattr(shape, "shape", None)  # a ModelCard or a loaded Model
    if isinstance(inner, ModelShape):
        return inner
    raise SpecError(f"expected a ModelShape (or a model card), got {type(shape).__name__}")


def shape_text(shape: ModelShape) -> str:
    return shape.text


def applies_to(h: Hypothesis, shape: Any) -> Applicability:
    """Whether ``h`` is about models of this shape (operation, digits, layers, heads)."""
    shape = as_shape(shape)
    a = h.applies_to
    ops = a.ops or [h.task]
    if shape.op not in ops:
        return Applicability(False, f"it is about {'/'.join(ops)} models, this one is {shape.op}")
    for what, value, bounds in (
        ("digits", shape.digits, a.digits),
        ("layers", shape.n_layers, a.layers),
        ("heads", shape.n_heads, a.heads),
    ):
        if value not in bounds:
            return Applicability(False, f"it needs {what} {bounds.text()}, this model has {value}")
    return Applicability(True)


def default_shape(
    h: Hypothesis,
    *,
    op: str | None = None,
    digits: int | None = None,
    n_layers: int | None = None,
    n_heads: int | None = None,
    layout: str | None = None,
) -> ModelShape:
    """A shape to check a spec against when no model is named: the given numbers (and layout), else
    the paper's 6 digits, 2 layers, 3 heads moved into the hypothesis's ``applies_to`` bounds."""
    a = h.applies_to

    def pick(given, default, bounds):
        if given is not None:
            return given
        lo = bounds.min if bounds.min is not None else default
        hi = bounds.max if bounds.max is not None else max(default, lo)
        return min(max(default, lo), hi)

    return make_shape(
        op or (a.ops or [h.task])[0],
        pick(digits, 6, a.digits),
        pick(n_layers, 2, a.layers),
        pick(n_heads, 3, a.heads),
        layout=layout,
    )


# ----------------------------------------------------------------------------- edges
