"""Causal confirmation: does patching a placement change the answer as the task predicts?

For a variable instance (``SA(3)``) we draw base questions across the classes where the
variable matters, build source questions that differ in it (holding the node's ``keep``
variables equal), and ask the task's causal model for the exact answer after the
interchange. A placement is scored on every pair by patching its sites from the source.

Only the answer tokens a placement *serves* are compared: those its ablation measurably
changes (the engine's facts). A site at position p cannot influence the logits before
p, and the paper's models compute one variable in several places, each copy serving
some answer digits (the carry into A(n+1) is read from column n at A(n+1)'s own token,
while the tail's TriCase of column n feeds the higher digits), so a site is held to
the prediction only where it acts. A pair is *informative* for a placement when the
predicted answer differs from the base answer on some served token; accuracy is the
share of informative pairs whose served tokens all equal the prediction. A site that
serves nothing has no informative pairs and cannot pass.

The patched run reads the predicted answer as its own earlier answer tokens
(``Engine.answered``): the model reads the sign it emitted when it writes the digits, so a
placement that flips the sign is judged as the model would continue after writing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.stats import wilson
from circuitspec.vocabulary import VarKey

@dataclass
class Pairs:
    """Counterfactual pairs for one variable instance, restricted to clean-correct rows."""

    key: VarKey
    base: torch.Tensor  # [B, n_ctx]
    source: torch.Tensor  # [B, n_ctx]
    predicted: torch.Tensor  # [B, n_answer]
    gold: torch.Tensor  # [B, n_answer]
    dropped: int  # rows without a valid source, off the variable's classes, or (of those checked) answered wrong

    def joined(self, other: "Pairs") -> "Pairs":
        """These pairs followed by ``other``'s (the same variable drawn by two routes)."""
        return Pairs(
            key=self.key,
            base=torch.cat([self.base, other.base]),
            source=torch.cat([self.source, other.source]),
            predicted=torch.cat([self.predicted, other.predicted]),
            gold=torch.cat([self.gold, other.gold]),
            dropped=self.dropped + other.dropped,
        )


@dataclass(frozen=True)
class Score:
    """Interchange evidence for one placement on one variable."""

    key: VarKey
    successes: int
    informative: int
    changed: int
    example: str | None
    gain: float = 0.0  # mean rise of the predicted answer's log-prob (served tokens) over the clean run
    drawn: int = 0  # pairs tested, informative or not
    failing_digits: tuple[tuple[str, int], ...] = ()  # served answer token -> failing pairs wrong there
    failing_classes: tuple[tuple[str, int], ...] = ()  # base question's class -> failing pairs

    @property
    def accuracy(self) -> tuple[float, float, float]:
        return wilson(self.successes, self.informative)

    @property
    def changed_share(self) -> tuple[float, float, float]:
        return wilson(self.changed, self.informative)


def draw_pairs(
    engine: Engine, key: VarKey, *, n_pairs: int, keep: Sequence[VarKey], seed: int, explains: Sequence[str] = ()
) -> Pairs:
    """Base questions spread evenly over the variable's classes, with their sources.

    Both questions of a pair lie in the variable's classes (a Base Diff pair never turns
    into a negative answer) and in ``explains``, the classes the hypothesis claims
    (empty: all). A cascaded variable (``SV(n)``, n > 0) changes by two routes: its own
    column's TriCase, or, where that column is a tie, the carry from below. The nearest
    source almost always takes the first, so half the pairs are drawn through the
    second (column n tied in both questions, its TriCase kept): a placement that only
    reads column n then fails them.
    """
    task = engine.task
    classes = classes_claimed(engine, key, explains)
    gate = task.cascade_gate(key)
    if gate is None:
        return _draw(engine, key, n_pairs, keep, seed, classes)
    through = _draw(engine, key, n_pairs // 2, [*keep, gate], seed + 1, classes, ties=(key[1],))
    direct = _draw(engine, key, n_pairs - len(through.base), keep, seed, classes)
    return direct.joined(through)


def classes_claimed(engine: Engine, key: VarKey, explains: Sequence[str] = ()) -> list:
    """The classes a variable's pairs are drawn from: its own, within those the hypothesis claims ([None]: any)."""
    return [c for c in engine.task.classes_for(key[0]) if not explains or c in explains] or [None]


def draw_tied(
    engine: Engine, key: VarKey, *, n_pairs: int, keep: Sequence[VarKey], seed: int, ties: Sequence[int], explains: Sequence[str] = ()
) -> Pairs:
    """Pairs for ``key`` whose bases (and sources: keep their TriCases in ``keep``) have the columns
    ``ties`` made ties, so that a change of ``key`` can travel up a carry cascade through them."""
    return _draw(engine, key, n_pairs, keep, seed, classes_claimed(engine, key, explains), ties=ties)


def _draw(
    engine: Engine, key: VarKey, n_pairs: int, keep: Sequence[VarKey], seed: int, classes: list, ties: Sequence[int] = ()
) -> Pairs:
    """``n_pairs`` pairs (fewer when too few rows qualify) with bases drawn round-robin over
    ``classes``; ``ties``: make those columns ties in every base first."""
    task = engine.task
    per_class = -(-2 * n_pairs // len(classes))  # draw extra: some rows are dropped
    base = torch.cat([engine.questions(per_class, seed=seed, cls=c) for c in classes])
    for column in ties:
        base = task.tie(base, column)
    g = torch.Generator().manual_seed(seed)
    cf = task.counterfactuals(base, key, g, keep=list(keep))
    ok = cf.valid.clone()
    if ties:  # a tied base may have become a reference question (row kept, so buckets stay aligned)
        ok &= ~engine.reference_overlap(base)
    if classes != [None]:  # both stay on the variable's branch (MD: D >= D', ND: D < D')
        names = task.class_names
        for side in (cf.base, cf.source):
            ok &= torch.tensor([names[c] in classes for c in task.classes(side).tolist()], dtype=torch.bool)
    # Keep the class balance: take rows round-robin over classes up to n_pairs.
    order, wrong = _answered_round_robin(engine, cf.base, cf.source, ok, len(classes), per_class, n_pairs)
    return Pairs(
        key=key,
        base=cf.base[order],
        source=cf.source[order],
        predicted=cf.predicted[order],
        gold=task.answers(cf.base[order]),
        dropped=int(len(base) - ok.sum()) + wrong,
    )


def _answered_round_robin(
    engine: Engine, base: torch.Tensor, source: torch.Tensor, ok: torch.Tensor, groups: int, size: int, n: int
) -> tuple[torch.Tensor, int]:
    """The first ``n`` rows taken round-robin over the groups (group g: rows g * size up to
    (g + 1) * size, in order) among those that are ``ok`` and that the clean model answers
    right as base and as source; and how many checked rows it answered wrong.

    The clean model runs only on rows the choice can reach: a prefix of each group, then more
    where a group runs short. A row's clean answer does not depend on the other rows, so the
    choice is the one a clean run over every row would give, at about half the cost; and the
    sources' passes are the ones the interchange tests of these pairs need, so they run once.
    """
    buckets = [(ok[g * size : (g + 1) * size].nonzero().flatten() + g * size).tolist() for g in range(groups)]
    passed: list[list[int]] = [[] for _ in buckets]
    checked = [0] * groups
    wrong = 0
    first = -(-n // groups)
    step = {g: first + first // 32 + 1 for g in range(groups)} if n > 0 else {}  # rows to check next, per group (a 3% margin)
    while step:
        batch = {g: buckets[g][checked[g] : checked[g] + k] for g, k in step.items()}
        rows = [r for b in batch.values() for r in b]
        if rows:
            t = torch.tensor(rows, dtype=torch.long)
            # the sources' passes stay in the engine's recall for the pairs' interchange tests; the
            # bases' would not be read: those tests run each base on its predicted answer (Engine.answered)
            right = engine.clean(base[t]).question_correct
            right &= engine.clean(source[t], recall="sources").question_correct
            verdicts = iter(right.cpu().tolist())
            for g, b in batch.items():
                for r in b:
                    if next(verdicts):
                        passed[g].append(r)
                    else:
                        wrong += 1
                checked[g] += len(b)
        step = _undecided(passed, checked, buckets, n)
    order = [p[i] for i in range(max(map(len, passed), default=0)) for p in passed if i < len(p)][:n]
    return torch.tensor(order, dtype=torch.long), wrong


def _undecided(passed: list[list[int]], checked: list[int], buckets: list[list[int]], n: int) -> dict[int, int]:
    """Groups whose unchecked rows could still change the first ``n`` rows of the round-robin,
    with how many of them to check next (empty: the choice is made)."""
    taken = 0
    for i in range(max(map(len, buckets), default=0)):
        short = [g for g, p in enumerate(passed) if len(p) <= i and checked[g] < len(buckets[g])]
        if short:
            return {g: 2 * (i + 1 - len(passed[g])) + 1 for g in short}
        taken += sum(len(p) > i for p in passed)
        if taken >= n:
            break
    return {}


def score(
    engine: Engine, pairs: Pairs, placements: Sequence[Sequence[Site]], served: Sequence[set[str]]
) -> list[Score]:
    """Interchange-score each placement (a set of sites patched jointly) on ``pairs``.

    ``served[i]``: the answer labels (``"A3"``, ``"sign"``) placement i is held to.
    """
    if not placements:
        return []
    if len(pairs.base) == 0:
        return [Score(pairs.key, 0, 0, 0, None, drawn=0) for _ in placements]
    ivs = [Intervention("interchange", tuple(sites), source=pairs.source) for sites in placements]
    out = engine.run(engine.answered(pairs.base, pairs.predicted), ivs, targets=pairs.predicted)
    pred = out.pred.cpu()  # [I, B, A]
    target_lp = out.target_logprob.cpu()  # [I, B, A]
    clean_lp = out.clean.logprobs.cpu().gather(-1, pairs.predicted.unsqueeze(-1)).squeeze(-1)  # [B, A]
    return [judge(engine, pairs, pred[i], served[i], target_lp[i] - clean_lp) for i in range(len(placements))]


def judge(engine: Engine, pairs: Pairs, pred: torch.Tensor, served: set[str], lift: torch.Tensor | None = None) -> Score:
    """The Score of answers ``pred`` [B, A] (after some patch) against ``pairs.predicted``, on the
    ``served`` answer labels; ``lift`` [B, A]: rise of the predicted tokens' log-probs, for ``gain``."""
    reach = torch.tensor([label in served for label in engine.answer_labels])
    informative = (pairs.predicted != pairs.gold)[:, reach].any(dim=1)
    match = (pred[:, reach] == pairs.predicted[:, reach]).all(dim=1)
    changed = (pred[:, reach] != pairs.gold[:, reach]).any(dim=1)
    failures = (informative & ~match).nonzero().flatten()
    names = engine.task.class_names
    base_classes = [names[c] for c in engine.task.classes(pairs.base).tolist()]
    example = None
    if len(failures):
        r = int(failures[0])
        texts = engine.task.decode(torch.stack([pairs.base[r], pairs.source[r]]))
        want, got = engine.task.decode(torch.stack([pairs.predicted[r], pred[r]]))
        example = f"base {texts[0]} source {texts[1]}: predicted {want}, model gave {got}"
    gain = 0.0
    if lift is not None and informative.any():
        gain = round(float(lift[:, reach].sum(dim=1)[informative].mean()), 6)
    return Score(
        key=pairs.key,
        successes=int((informative & match).sum()),
        informative=int(informative.sum()),
        changed=int((informative & changed).sum()),
        example=example,
        gain=gain,
        drawn=len(pairs.base),
        **_where_failing(engine.answer_labels, reach, pred != pairs.predicted, failures, base_classes),
    )


def _where_failing(labels, reach: torch.Tensor, wrong: torch.Tensor, failures: torch.Tensor, classes: list[str]) -> dict:
    """Score fields: for the failing pairs, how many are wrong at each served answer token, and their classes."""
    rows = wrong[failures][:, reach]
    served = [label for label, r in zip(labels, reach.tolist()) if r]
    digits = tuple((label, int(k)) for label, k in zip(served, rows.sum(dim=0).tolist()) if k)
    counts: dict[str, int] = {}
    for r in failures.tolist():
        counts[classes[r]] = counts.get(classes[r], 0) + 1
    return {"failing_digits": digits, "failing_classes": tuple(sorted(counts.items()))}
