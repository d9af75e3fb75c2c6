"""The gap report: what a hypothesis that falls short of its faithfulness or completeness is missing.

Faithfulness mean-ablates every site outside the circuit. The gap report asks, of each *useful*
site outside it (facts: ablating it alone breaks some question; an MLP that holds some circuit
neurons contributes its other neurons), how much faithfulness comes back when that one site is
left un-ablated, and which answer digits and question classes it repairs. Then it selects a small
set of such sites that brings faithfulness to the hypothesis's threshold by greedy forward
selection: each step keeps the site that raises faithfulness most (ties: the most answer tokens
restored, then site order) and stops at the threshold, or when no site helps. Greedy is not
guaranteed to find the smallest set; it is what the report calls ``smallest_set``.

Every figure is measured on the metric questions of ``verify.metrics`` (same seed, same scope),
with all candidates of one step in one batched ``Engine.run``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.verify.metrics import complement
from circuitspec.verify.verdict import CircuitMetrics, GapReport, SiteRepair

METHOD = "greedy forward selection: each step keeps the site that raises faithfulness most (ties: answer tokens restored)"


def falls_short(measured: CircuitMetrics, min_faithfulness: float | None, min_completeness: float | None) -> bool:
    """Faithfulness or completeness measured and below its threshold (point estimate)."""
    f, c = measured.faithfulness, measured.completeness
    return (f is not None and min_faithfulness is not None and f.value < min_faithfulness) or (
        c is not None and min_completeness is not None and c.value < min_completeness
    )


def candidates(circuit: Sequence[Site], useful: Sequence[Site | str], engine: Engine) -> list[Site]:
    """The sites outside ``circuit`` (as faithfulness ablates them) that lie on a useful site."""
    places = {(s.layer, s.position, "mlp" if s.kind == "neurons" else s.kind, s.head) for s in map(_site, useful)}
    return [s for s in complement(circuit, engine) if (s.layer, s.position, "mlp" if s.kind == "neurons" else s.kind, s.head) in places]


def _site(s: Site | str) -> Site:
    return s if isinstance(s, Site) else Site.parse(s)


class _State:
    """Per clean-correct question and in-scope answer token: right under the current ablation?"""

    def __init__(self, engine: Engine, questions: torch.Tensor, scope: Sequence[bool]) -> None:
        self.scope = list(scope)
        self.tokens = torch.tensor(scope, dtype=torch.bool)
        self.labels = [a for a, inside in zip(engine.answer_labels, scope) if inside]
        clean = engine.clean(questions).correct.cpu()[:, self.tokens].all(dim=-1)
        self.ok = clean
        names = list(engine.task.class_names)
        self.classes = [names[c] for c in engine.task.classes(questions[clean]).tolist()]
        self.n = int(clean.sum())

    def right(self, correct: torch.Tensor) -> torch.Tensor:
        """[I, B, A] engine correctness -> [I, n, A'] on clean-correct rows and scope tokens."""
        return correct.cpu()[:, self.ok][..., self.tokens]

    def repair(self, site: Site, before: torch.Tensor, after: torch.Tensor, base_faith: float) -> SiteRepair:
        fixed = ~before & after  # [n, A']
        rows = fixed.any(dim=1)
        classes: dict[str, int] = {}
        for c, r in zip(self.classes, rows.tolist()):
            if r:
                classes[c] = classes.get(c, 0) + 1
        faith = _share(after.all(dim=1))
        return SiteRepair(
            site=str(site),
            faithfulness=faith,
            restores=round(faith - base_faith, 6),
            tokens_restored=round(_share(after) - _share(before), 6),
            digits={lab: int(k) for lab, k in zip(self.labels, fixed.sum(dim=0).tolist()) if k},
            classes=dict(sorted(classes.items())),
        )


def _share(x: torch.Tensor) -> float:
    return round(float(x.float().mean()), 6) if x.numel() else 0.0


def _key(right: torch.Tensor) -> tuple[int, int]:
    """What the ranking and each greedy step maximise: questions fully right, then tokens right."""
    return int(right.all(dim=1).sum()), int(right.sum())


def measure_gap(
    engine: Engine,
    circuit: Sequence[Site],
    useful: Sequence[Site | str],
    *,
    questions: torch.Tensor,
    scope: Sequence[bool],
    threshold: float | None,
    completeness: bool = False,
    useful_positions: Sequence[int] | None = None,
) -> GapReport:
    """The gap report of ``circuit`` (see the module docstring).

    ``threshold``: min_faithfulness (no set is searched without one); ``completeness``: also
    measure each ranked site's completeness gain (asked when completeness falls short);
    ``useful_positions``: where the greedy set may also take sites that are not useful alone
    (default: the positions of the useful sites).
    """
    state = _State(engine, questions, scope)
    outside = complement(circuit, engine)
    pool = candidates(circuit, useful, engine)
    inside = tuple(circuit)
    ivs = [Intervention("mean", tuple(outside))] + [Intervention("mean", tuple(s for s in outside if s != c)) for c in pool]
    if completeness:
        ivs += [Intervention("mean", inside)] + [Intervention("mean", inside + (c,)) for c in pool]
    right = state.right(engine.run(questions, ivs).correct)
    n = len(pool)
    base, alone = right[0], right[1 : 1 + n]
    base_faith = _share(base.all(dim=1))
    ranking = []
    for i, c in enumerate(pool):
        r = state.repair(c, base, alone[i], base_faith)
        if completeness:
            gain = _share(~right[2 + n + i].all(dim=1)) - _share(~right[1 + n].all(dim=1))
            r = r.model_copy(update={"completeness_gain": round(gain, 6)})
        ranking.append((_key(alone[i]), i, r))
    ranking.sort(key=lambda t: (-t[0][0], -t[0][1], t[1]))
    positions = set(useful_positions if useful_positions is not None else (s.position for s in pool))
    others = [s for s in outside if s not in pool and s.position in positions]
    steps = []
    if threshold is not None and base_faith < threshold:
        steps = _smallest_set(engine, questions, state, outside, pool, others, base, alone, threshold)
    final = steps[-1].faithfulness if steps else base_faith
    return GapReport(
        threshold=threshold,
        faithfulness=base_faith,
        questions=state.n,
        ranking=[r for _, _, r in ranking],
        smallest_set=steps,
        reached=threshold is not None and final >= threshold,
        method=METHOD,
    )


SEARCH_STRIDE = 3  # the greedy search runs on every third clean-correct question; figures use all


def _smallest_set(engine, questions, state, outside, pool, others, base, alone, threshold) -> list[SiteRepair]:
    """Greedy set (see ``_Greedy``), searched on a stratified third of the questions, then measured
    on all of them, step by step; if all of them fall short, the search goes on there."""
    rows = torch.arange(0, state.n, SEARCH_STRIDE)
    sub_questions = questions[state.ok.to(questions.device)][rows.to(questions.device)]
    sub = _Greedy(engine, sub_questions, _State(engine, sub_questions, state.scope), outside, base[rows])
    sub.run(pool, alone[:, rows], others, threshold)
    full = _Greedy(engine, questions, state, outside, base)
    steps: list[SiteRepair] = []
    if sub.kept:
        drop: set[Site] = set()
        ivs = []
        for site in sub.kept:
            drop.add(site)
            ivs.append(Intervention("mean", tuple(s for s in outside if s not in drop)))
        for site, right in zip(sub.kept, state.right(engine.run(questions, ivs).correct)):
            steps.append(state.repair(site, full.current, right, _share(full.current.all(dim=1))))
            full.kept.append(site)
            full.current = right
            if steps[-1].faithfulness >= threshold:
                return steps
    left = [c for c in [*pool, *others] if c not in full.kept]
    return steps + full.run([c for c in pool if c in left], None, [c for c in others if c in left], threshold)


class _Greedy:
    """Lazy greedy forward selection over the candidate sites (see the module docstring).

    A step should measure every remaining candidate with the sites kept so far; to stay cheap it
    takes each candidate's gain when last measured as its estimate, re-measures the best ``BATCH``
    by that estimate, and keeps the best fresh one once its gain is at least every stale estimate
    (exact when gains only shrink as sites are added; with interactions, a heuristic). Sites that
    are not useful alone start with no gain: they are measured when no fresh candidate restores
    anything, and then every remaining candidate is measured before the search gives up.
    """

    BATCH = 4

    def __init__(self, engine: Engine, questions: torch.Tensor, state: _State, outside: list[Site], base: torch.Tensor) -> None:
        self.engine, self.questions, self.state, self.outside = engine, questions, state, outside
        self.current = base
        self.kept: list[Site] = []

    def measure(self, sites: Sequence[Site]) -> torch.Tensor:
        drop = set(self.kept)
        ivs = [Intervention("mean", tuple(s for s in self.outside if s not in drop and s != c)) for c in sites]
        return self.state.right(self.engine.run(self.questions, ivs).correct)

    def gain(self, right: torch.Tensor) -> tuple[int, int]:
        (q, t), (q0, t0) = _key(right), _key(self.current)
        return q - q0, t - t0

    def run(self, pool: list[Site], alone: torch.Tensor | None, others: list[Site], threshold: float) -> list[SiteRepair]:
        order = {c: i for i, c in enumerate([*pool, *others])}
        fresh = {} if alone is None else {c: alone[i] for i, c in enumerate(pool)}  # measured in this context
        estimate = {c: self.gain(r) for c, r in fresh.items()} | {c: (0, 0) for c in [*pool, *others] if c not in fresh}
        remaining = [*pool, *others]
        steps: list[SiteRepair] = []
        while remaining and _share(self.current.all(dim=1)) < threshold:
            best = self._step(remaining, fresh, estimate, order)
            if best is None:
                break
            site, right = best
            steps.append(self.state.repair(site, self.current, right, _share(self.current.all(dim=1))))
            remaining.remove(site)
            self.kept.append(site)
            self.current = right
            fresh = {}
        return steps

    def _step(self, remaining, fresh, estimate, order) -> tuple[Site, torch.Tensor] | None:
        """The next site to keep, with its measurement, or None when none restores anything."""
        while True:
            stale = sorted((c for c in remaining if c not in fresh), key=lambda c: (tuple(-k for k in estimate[c]), order[c]))
            top = max(fresh, key=lambda c: (self.gain(fresh[c]), -order[c])) if fresh else None
            improves = top is not None and self.gain(fresh[top]) > (0, 0)
            if not stale or (improves and self.gain(fresh[top]) >= estimate[stale[0]]):
                return (top, fresh[top]) if improves else None
            batch = stale[: self.BATCH] if improves or not fresh else stale
            for c, right in zip(batch, self.measure(batch)):
                fresh[c] = right
                estimate[c] = self.gain(right)
