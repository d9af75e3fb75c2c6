"""A search for questions a model gets wrong, each failure shrunk to its simplest form.

Questions are drawn column by column from a mixture aimed at what uniform sampling
misses: a zero column, a tie (sum 9 for '+', equal digits for '-'), a carry (borrow)
or two uniform digits. That makes mostly-zero operands and cascades of any length,
at any place, common. Every failure is then shrunk greedily, as hypothesis shrinks
a falsifying example: zero a column or a digit, replace a column by the simplest pair
of the same kind, lower a digit by one; keep the simplest change that still fails,
until none does. Simpler means fewer non-zero digits, then a smaller digit sum. The
shrunk forms are what a person reads (``000500+000500=+0001000 (model: +0000000)``).
"""

from __future__ import annotations

import torch

from circuitspec.models.card import SearchResult
from circuitspec.models.evaluate import Progress, predictions
from circuitspec.models.families import answered
from circuitspec.tasks.columns import split

DEFAULT_SEED = 20240302
BLOCK = 10_000
SHRINK_AT_MOST = 50  # failures shrunk per search (all are counted)
KINDS = (0.3, 0.25, 0.2, 0.25)  # zero, tie, carry, uniform column


def structured_questions(task, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` questions whose columns are zero, tie, carry or uniform pairs (``KINDS``)."""
    d = task.digits
    if task.op == "mix":
        opr = torch.randint(0, 2, (n,), generator=generator)
    else:
        opr = torch.full((n,), int(task.op == "sub"), dtype=torch.long)
    kind = torch.multinomial(torch.tensor(KINDS), n * d, replacement=True, generator=generator).reshape(n, d)
    sub = opr[:, None] == 1
    hi = torch.randint(1, 10, (n, d), generator=generator)
    lo = (torch.rand(n, d, generator=generator) * hi).long()
    tie = torch.randint(0, 10, (n, d), generator=generator)
    ux, uy = torch.randint(0, 10, (n, d), generator=generator), torch.randint(0, 10, (n, d), generator=generator)
    x = torch.stack([torch.zeros_like(tie), tie, torch.where(sub, lo, hi), ux])
    y = torch.stack([torch.zeros_like(tie), torch.where(sub, tie, 9 - tie), torch.where(sub, hi, 9 - lo), uy])
    pick = kind[None]
    return task.assemble(x.gather(0, pick)[0], y.gather(0, pick)[0], opr)


def _complexity(x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    both = torch.cat([x, y])
    return int((both != 0).sum()), int(both.sum())


def _simplest_pair(a: int, b: int, sub: bool) -> tuple[int, int]:
    """The simplest digit pair of the same column kind as (a, b)."""
    if sub:
        return (0, 1) if a < b else (0, 0) if a == b else (1, 0)
    return (1, 9) if a + b >= 10 else (0, 9) if a + b == 9 else (0, 0)


def _candidates(x: torch.Tensor, y: torch.Tensor, sub: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for i in range(len(x) - 1, -1, -1):
        a, b = int(x[i]), int(y[i])
        for na, nb in ((0, 0), (0, b), (a, 0), _simplest_pair(a, b, sub), (max(a - 1, 0), b), (a, max(b - 1, 0))):
            if (na, nb) != (a, b):
                cx, cy = x.clone(), y.clone()
                cx[i], cy[i] = na, nb
                out.append((cx, cy))
    return out


def shrink(model, tokens: torch.Tensor) -> torch.Tensor:
    """The simplest question reachable from the failing ``tokens`` [n_ctx] that still fails."""
    task = model.task
    x, y, opr = (t[0] for t in split(tokens[None], task.digits))
    sub = bool(opr)
    while True:
        key = _complexity(x, y)
        cands = [c for c in _candidates(x, y, sub) if _complexity(*c) < key]
        if not cands:
            break
        cx = torch.stack([c[0] for c in cands])
        cy = torch.stack([c[1] for c in cands])
        batch = task.assemble(cx, cy, opr.expand(len(cands)))
        wrong = (predictions(model, batch) != batch[:, -task.n_answer :]).any(-1)
        if not wrong.any():
            break
        best = min((i for i in wrong.nonzero()[:, 0].tolist()), key=lambda i: _complexity(cx[i], cy[i]))
        x, y = cx[best], cy[best]
    return task.assemble(x[None], y[None], opr[None])[0]


def search(
    model, questions: int, seed: int = DEFAULT_SEED, *, shrink_at_most: int = SHRINK_AT_MOST, progress: Progress | None = None
) -> SearchResult:
    """Draw ``questions`` structured questions, count the failures, shrink the first ``shrink_at_most``."""
    task = model.task
    was_training = model.bridge.training
    model.bridge.eval()
    g = torch.Generator().manual_seed(seed)
    done, failures, failing = 0, 0, []
    try:
        while done < questions:
            n = min(BLOCK, questions - done)
            tokens = structured_questions(task, n, g)
            wrong = (predictions(model, tokens) != tokens[:, -task.n_answer :]).any(-1)
            failures += int(wrong.sum())
            failing.extend(tokens[wrong][: max(0, shrink_at_most - len(failing))])
            done += n
            if progress:
                progress(done, questions)
        shrunk: dict[str, int] = {}
        for row in failing:
            small = shrink(model, row)
            text = answered(model, small[None], predictions(model, small[None]))[0]
            shrunk[text] = shrunk.get(text, 0) + 1
    finally:
        model.bridge.train(was_training)
    ordered = sorted(shrunk, key=lambda t: (-shrunk[t], t))
    return SearchResult(questions=done, failures=failures, seed=seed, shrunk=ordered, shrunk_from=[shrunk[t] for t in ordered])
