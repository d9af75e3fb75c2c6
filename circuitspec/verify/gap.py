"""The gap report: what a hypothesis that falls short of its faithfulness or completeness is missing.

Faithfulness mean-ablates every site outside the circuit. The gap report asks, of each *useful*
site outside it (facts: ablating it alone breaks some question; an MLP that holds some circuit
neurons contributes its other neurons) and of each pair of such heads at one layer and position,
how much faithfulness comes back when that unit is left un-ablated, and which answer digits and
question classes it repairs. Then it selects a small set of units that brings faithfulness to the
hypothesis's threshold by greedy forward selection: each step keeps the unit that raises
faithfulness most (ties: the most answer tokens restored, then ranking order) and stops at the
threshold, or when nothing helps; sites at useful positions that are not useful alone (one of two
redundant copies) join the search once the useful ones stop helping. Greedy is not guaranteed to
find the smallest set; it is what the report calls ``smallest_set``.

Every figure is measured on the metric questions of ``verify.metrics`` (same seed, same scope),
many units per batched ``Engine.run``; the search itself runs on a third of them (see
``_smallest_set``) and each step is then measured on all.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.verify.metrics import complement
from circuitspec.verify.verdict import CircuitMetrics, GapReport, SiteRepair

Unit = tuple[Site, ...]  # a site, or co-located heads kept together

METHOD = (
    "greedy forward selection: each step keeps the unit (a site, or two co-located heads) that raises faithfulness "
    "most (ties: answer tokens restored), searched on a third of the questions and measured on all"
)


def falls_short(measured: CircuitMetrics, min_faithfulness: float | None, min_completeness: float | None) -> bool:
    """Faithfulness or completeness measured and below its threshold (point estimate)."""
    f, c = measured.faithfulness, measured.completeness
    return (f is not None and min_faithfulness is not None and f.value < min_faithfulness) or (
        c is not None and min_completeness is not None and c.value < min_completeness
    )


def candidates(circuit: Sequence[Site], useful: Sequence[Site | str], engine: Engine) -> list[Unit]:
    """What the report ranks: each site outside ``circuit`` (as faithfulness ablates them) that lies
    on a useful site, and each pair of such heads at one layer and position (a node's value is often
    split over two co-located heads, neither of which restores anything alone)."""
    places = {_place(s) for s in map(_site, useful)}
    singles = [s for s in complement(circuit, engine) if _place(s) in places]
    by_place: dict[tuple[int, int], list[Site]] = {}
    for s in singles:
        if s.kind == "head":
            by_place.setdefault((s.layer, s.position), []).append(s)
    pairs = [p for key in sorted(by_place) for p in itertools.combinations(by_place[key], 2)]
    return [(s,) for s in singles] + pairs


def _place(s: Site) -> tuple:
    return (s.layer, s.position, "mlp" if s.kind == "neurons" else s.kind, s.head)


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
        self.classes = [names[c] for c in engine.task.classes(questions[clean.to(questions.device)]).tolist()]
        self.n = int(clean.sum())

    def right(self, correct: torch.Tensor) -> torch.Tensor:
        """[I, B, A] engine correctness -> [I, n, A'] on clean-correct rows and scope tokens."""
        return correct.cpu()[:, self.ok][..., self.tokens]

    def repair(self, unit: Unit, before: torch.Tensor, after: torch.Tensor, base_faith: float) -> SiteRepair:
        """What keeping ``unit`` did: ``before`` / ``after`` are [n, A'] correctness without / with it."""
        fixed = ~before & after  # [n, A']
        rows = fixed.any(dim=1)
        classes: dict[str, int] = {}
        for c, r in zip(self.classes, rows.tolist()):
            if r:
                classes[c] = classes.get(c, 0) + 1
        faith = _share(after.all(dim=1))
        return SiteRepair(
            sites=[str(s) for s in unit],
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


def _without(outside: Sequence[Site], kept: set[Site]) -> Intervention:
    return Intervention("mean", tuple(s for s in outside if s not in kept))


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
    measure each ranked unit's completeness gain (asked when completeness falls short);
    ``useful_positions``: where the greedy set may also take sites that are not useful alone
    (default: the positions of the useful sites).
    """
    state = _State(engine, questions, scope)
    outside = complement(circuit, engine)
    pool = candidates(circuit, useful, engine)
    inside = tuple(circuit)
    ivs = [_without(outside, set())] + [_without(outside, set(u)) for u in pool]
    if completeness:
        ivs += [Intervention("mean", inside)] + [Intervention("mean", inside + u) for u in pool]
    right = state.right(engine.run(questions, ivs).correct)
    n = len(pool)
    base, alone = right[0], right[1 : 1 + n]
    base_faith = _share(base.all(dim=1))
    single = {u[0]: _key(alone[i]) for i, u in enumerate(pool) if len(u) == 1}
    ranking = []
    for i, u in enumerate(pool):
        if len(u) > 1 and _key(alone[i]) <= max(single[s] for s in u):
            continue  # a pair is listed only where it restores more than each of its heads
        r = state.repair(u, base, alone[i], base_faith)
        if completeness:
            gain = _share(~right[2 + n + i].all(dim=1)) - _share(~right[1 + n].all(dim=1))
            r = r.model_copy(update={"completeness_gain": round(gain, 6)})
        ranking.append((_key(alone[i]), i, r))
    ranking.sort(key=lambda t: (-t[0][0], -t[0][1], t[1]))
    positions = set(useful_positions if useful_positions is not None else (s.position for u in pool for s in u))
    listed = {s for u in pool for s in u}
    others = [(s,) for s in outside if s not in listed and s.position in positions]
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
        kept: set[Site] = set()
        ivs = []
        for unit in sub.kept:
            kept |= set(unit)
            ivs.append(_without(outside, kept))
        for unit, right in zip(sub.kept, state.right(engine.run(questions, ivs).correct)):
            steps.append(full.keep(unit, right))
            if steps[-1].faithfulness >= threshold:
                return steps
    return steps + full.run(pool, None, others, threshold)


class _Greedy:
    """Lazy greedy forward selection over the candidate units (see the module docstring).

    A step should measure every remaining unit with the sites kept so far; to stay cheap it
    takes each unit's gain when last measured as its estimate, re-measures the best ``BATCH``
    by that estimate, and keeps the best fresh one once its gain is at least every stale estimate
    (exact when gains only shrink as sites are added; with interactions, a heuristic). Sites that
    are not useful alone start with no gain: they are measured when no fresh unit restores
    anything, and then every remaining unit is measured before the search gives up.
    """

    BATCH = 4

    def __init__(self, engine: Engine, questions: torch.Tensor, state: _State, outside: list[Site], base: torch.Tensor) -> None:
        self.engine, self.questions, self.state, self.outside = engine, questions, state, outside
        self.current = base
        self.kept: list[Unit] = []
        self.sites: set[Site] = set()

    def measure(self, units: Sequence[Unit]) -> torch.Tensor:
        ivs = [_without(self.outside, self.sites | set(u)) for u in units]
        return self.state.right(self.engine.run(self.questions, ivs).correct)

    def gain(self, right: torch.Tensor) -> tuple[int, int]:
        (q, t), (q0, t0) = _key(right), _key(self.current)
        return q - q0, t - t0

    def keep(self, unit: Unit, right: torch.Tensor) -> SiteRepair:
        """Keep ``unit`` (measured as ``right`` with the sites kept so far); its step of the set."""
        step = self.state.repair(unit, self.current, right, _share(self.current.all(dim=1)))
        self.kept.append(unit)
        self.sites |= set(unit)
        self.current = right
        return step

    def run(self, pool: list[Unit], alone: torch.Tensor | None, others: list[Unit], threshold: float) -> list[SiteRepair]:
        """Steps until faithfulness reaches ``threshold``; ``alone``: ``pool`` measured in this context."""
        order = {u: i for i, u in enumerate([*pool, *others])}
        fresh = {} if alone is None else {u: alone[i] for i, u in enumerate(pool)}
        estimate = {u: self.gain(r) for u, r in fresh.items()} | {u: (0, 0) for u in order if u not in fresh}
        steps: list[SiteRepair] = []
        while _share(self.current.all(dim=1)) < threshold:
            remaining = [u for u in order if not set(u) <= self.sites]
            best = self._step(remaining, fresh, estimate, order) if remaining else None
            if best is None:
                break
            steps.append(self.keep(*best))
            fresh = {}
        return steps

    def _step(self, remaining, fresh, estimate, order) -> tuple[Unit, torch.Tensor] | None:
        """The next unit to keep, with its measurement, or None when none restores anything."""
        while True:
            stale = sorted((u for u in remaining if u not in fresh), key=lambda u: (tuple(-k for k in estimate[u]), order[u]))
            top = max(fresh, key=lambda u: (self.gain(fresh[u]), -order[u])) if fresh else None
            improves = top is not None and self.gain(fresh[top]) > (0, 0)
            if not stale or (improves and self.gain(fresh[top]) >= estimate[stale[0]]):
                return (top, fresh[top]) if improves else None
            batch = stale[: self.BATCH] if improves or not fresh else stale
            for u, right in zip(batch, self.measure(batch)):
                fresh[u] = right
                estimate[u] = self.gain(right)
