"""Counterfactual (base, source) pairs for interchange tests.

For each base question we look for a source that differs from it as little as
possible, whose ``key`` variable differs, whose ``keep`` variables are equal, and that
is informative: the answer the causal model predicts for the base with ``key`` taken
from the source differs from the base's gold answer (else the test could not tell a
working node from a dead one). Candidates are drawn many per row at once, narrowest
re-draw first (column n alone, then columns 0..n); the first that passes wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from circuitspec.tasks import causal
from circuitspec.tasks.base import Counterfactuals
from circuitspec.tasks.columns import answer_tokens, assemble, split
from circuitspec.vocabulary import VarKey, key_text

PER_ROUND = 16  # candidates per row in one vectorised draw
ROUNDS = 4  # draws per re-draw width before giving up on a row

Candidates = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def build(task, tokens: torch.Tensor, key: VarKey, generator: torch.Generator, keep: Sequence[VarKey]) -> Counterfactuals:
    """See ``ArithmeticTask.counterfactuals``; ``key`` and ``keep`` are already checked."""
    digits = task.digits
    x, y, opr = split(tokens, digits)
    rows = x.shape[0]
    base_values = causal.evaluate(x, y, opr)
    gold = answer_tokens(base_values["sign"], base_values["A"], task.layout)

    found = torch.zeros(rows, dtype=torch.bool, device=x.device)
    partial = found.clone()  # a source that differs and keeps, but is not informative
    differs_ever, keeps_ever = found.clone(), found.clone()
    chosen = (x.clone(), y.clone(), opr.clone())
    fallback = (x.clone(), y.clone(), opr.clone())

    for draw, tries in _strategies(key, task.op, digits, generator):
        for _ in range(tries):
            if bool(found.all()):
                break
            cx, cy, copr = draw(x, y, opr)
            k = cx.shape[0] // rows
            values = causal.evaluate(cx, cy, copr)
            differs = (_pick(values, key) != _pick(base_values, key).repeat_interleave(k)).view(rows, k)
            keeps = torch.ones_like(differs)
            for kept in keep:
                keeps &= (_pick(values, kept) == _pick(base_values, kept).repeat_interleave(k)).view(rows, k)
            predicted = _predict(x, y, opr, key, _pick(values, key), k, task.layout)
            informative = (predicted != gold.repeat_interleave(k, 0)).any(1).view(rows, k)
            differs_ever |= differs.any(1)
            keeps_ever |= (differs & keeps).any(1)
            chosen = _take_first(chosen, (cx, cy, copr), differs & keeps & informative, ~found, rows, k)
            fallback = _take_first(fallback, (cx, cy, copr), differs & keeps, ~partial, rows, k)
            found |= (differs & keeps & informative).any(1)
            partial |= (differs & keeps).any(1)

    sx, sy, sopr = (torch.where(found[:, None] if c.dim() == 2 else found, c, f) for c, f in zip(chosen, fallback))
    source_values = causal.evaluate(sx, sy, sopr)
    source = assemble(sx, sy, sopr, source_values["sign"], source_values["A"], task.layout)
    predicted = _predict(x, y, opr, key, _pick(source_values, key), 1, task.layout).long()
    reason = _reasons(task, key, keep, found, differs_ever, keeps_ever)
    return Counterfactuals(key=key, base=tokens, source=source, predicted=predicted, valid=found, reason=reason)


def _strategies(key: VarKey, op: str, digits: int, generator: torch.Generator) -> list[tuple[Candidates, int]]:
    """Ways to make a source, least change first, with how many draws each gets."""
    name, n = key
    if name == "OPR":
        return [(lambda x, y, opr: (x, y, 1 - opr), 1)] if op == "mix" else []
    if name == "SGN":
        return [(lambda x, y, opr: (y, x, opr), 1)]
    top = min(n, digits - 1)  # A(digits) is made by the columns below it
    widths = [torch.arange(digits) == top]
    if top > 0:
        widths.append(torch.arange(digits) <= top)
    return [(_redraw(mask, generator), ROUNDS) for mask in widths]


def _redraw(mask: torch.Tensor, generator: torch.Generator) -> Candidates:
    def draw(x, y, opr):
        shape = (x.shape[0] * PER_ROUND, x.shape[1])
        cols = mask.to(x.device)
        fresh = torch.randint(0, 10, (2, *shape), generator=generator, device=x.device)
        cx = torch.where(cols, fresh[0], x.repeat_interleave(PER_ROUND, 0))
        cy = torch.where(cols, fresh[1], y.repeat_interleave(PER_ROUND, 0))
        return cx, cy, opr.repeat_interleave(PER_ROUND)

    return draw


def _pick(values: dict[str, torch.Tensor], key: VarKey) -> torch.Tensor:
    name, n = key
    return values[name] if n is None else values[name][:, n]


def _predict(x, y, opr, key: VarKey, value: torch.Tensor, k: int, layout) -> torch.Tensor:
    """Causal model's answer tokens for each base (repeated k times) with ``key`` := value."""
    rep = [t.repeat_interleave(k, 0) for t in (x, y, opr)]
    values = causal.evaluate(*rep, {key: value})
    return answer_tokens(values["sign"], values["A"], layout)


def _take_first(current, candidates, ok: torch.Tensor, open_rows: torch.Tensor, rows: int, k: int):
    """Replace, for open rows with a passing candidate, the current choice by the first passing one."""
    first = ok.float().argmax(1)
    take = open_rows & ok.any(1)
    index = torch.arange(rows, device=ok.device) * k + first
    out = []
    for cur, cand in zip(current, candidates):
        picked = cand[index]
        out.append(torch.where(take[:, None] if cur.dim() == 2 else take, picked, cur))
    return tuple(out)


def _reasons(task, key, keep, found, differs_ever, keeps_ever) -> list[str | None]:
    what = key_text(key)
    kept = ", ".join(key_text(k) for k in keep)
    name = key[0]
    if name == "OPR" and task.op != "mix":
        no_change = f"{task.name} has a single operator, so OPR cannot differ"
    elif name == "SGN":
        no_change = "the operands are equal, so swapping them leaves SGN unchanged"
    elif key[1] is None:
        no_change = f"{what} cannot differ for this question"
    else:
        no_change = f"no re-draw of columns 0..{min(key[1], task.digits - 1)} changes {what}"
    no_keep = f"no source with a different {what} keeps {kept} equal"
    no_info = f"no source with a different {what}{' keeping ' + kept if kept else ''} changes the predicted answer"
    out: list[str | None] = []
    for ok, d, kp in zip(found.tolist(), differs_ever.tolist(), keeps_ever.tolist()):
        out.append(None if ok else no_info if kp else no_keep if d else no_change)
    return out
