"""The gap report: what a hypothesis that falls short of its faithfulness or completeness is missing.

Faithfulness mean-ablates every site outside the circuit. The gap report asks, of each *useful*
site outside it (facts: ablating it alone breaks some question; an MLP that holds some circuit
neurons contributes its other neurons) and of each pair of such heads at one layer and position,
how much faithfulness comes back when that unit is left un-ablated, and which answer digits and
question classes it repairs. Then it selects a small set of sites that brings faithfulness to the hypothesis's threshold. A
hypothesis at faithfulness 0 on a 3-layer model misses dozens of sites, and greedy forward
selection (each step measuring every remaining site with the ones kept so far) then costs
hundreds of ablations per step. The set is found by necessity instead: with every useful site
kept, each is ablated again alone (one measurement per site), the sites are ordered by how much
faithfulness drops without them, and the set is the shortest prefix of that order that reaches
the threshold (sites at useful positions that are not useful alone, one of two redundant copies,
join the order when the useful ones cannot reach it). The prefix length is found by doubling it
until the threshold is reached and then narrowing the last interval (a few runs of a dozen
prefixes, not one measurement per prefix: for a set of 155 sites in a 3-layer model, 22 instead of 160). Its
steps are the prefixes, each measured, up to ``MAX_STEPS`` sites; a larger set lists its most
``MAX_STEPS // 2`` sites one by one and the rest in even blocks. A step whose sites
restore nothing by themselves shares a step with the next one (they are needed together), so
every step raises faithfulness. Like greedy, this is not guaranteed to find the smallest set; it
is what the report calls ``smallest_set``.

Every figure is measured on the metric questions of ``verify.metrics`` (same seed, same scope),
many units per batched ``Engine.run``; the order and the prefix are searched on a third of them
(see ``_smallest_set``), and each step is then measured on all.
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
    "necessity order: with every useful site kept, each is ablated again alone; the set is the shortest prefix of "
    "sites, most needed first, that reaches the threshold (its length found by doubling and narrowing on a third of the "
    "questions, checked on all); steps measured on all: each site up to 24, else the first 12 one by one and the rest "
    "in 12 even blocks; a step that restores nothing by itself shares a step with the next"
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
        # the pass that the runs over these questions read
        clean = engine.clean(questions, recall="questions").correct.cpu()[:, self.tokens].all(dim=-1)
        self.ok = clean
        names = list(engine.task.class_names)
        self.classes = [names[c] for c in engine.task.classes(questions[clean.to(questions.device)]).tolist()]
        self.n = int(clean.sum())

    def right(self, correct: torch.Tensor) -> torch.Tensor:
        """[I, B, A] engine correctness -> [I, n, A'] on clean-correct rows and scope tokens."""
        return correct.cpu()[:, self.ok][..., self.tokens]

    @staticmethod
    def right_all(correct: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """[I, B, A] engine correctness on clean-correct questions -> [I, B, A'] on scope tokens."""
        return correct.cpu()[..., tokens]

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
    """What the ranking and the set's steps maximise: questions fully right, then tokens right."""
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
    ``useful_positions``: where the set may also take sites that are not useful alone
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
    # a site that can change no predicted answer would only pad the set
    others = [(s,) for s in outside if s not in listed and s.position in positions and engine.answers_reached(s)]
    steps = []
    if threshold is not None and base_faith < threshold:
        steps = _smallest_set(engine, questions, state, outside, pool, others, base, threshold)
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


SEARCH_STRIDE = 3  # the order and the prefix are searched on every third clean-correct question; figures use all
PROBES = 12  # prefix sizes measured per engine run while searching
MAX_STEPS = 24  # a larger set's steps: its first MAX_STEPS // 2 sites one by one, the rest in even blocks


def _smallest_set(engine, questions, state, outside, pool, others, base, threshold) -> list[SiteRepair]:
    """The set's steps (see the module docstring): order and prefix on a stratified third of the
    questions; then the prefix checked on all of them (searched further along the order where it
    falls short there) and its steps measured on all. A prefix the search measured is measured
    again on the other two thirds only (a question's answers do not depend on the other rows of a run)."""
    rows = torch.arange(0, state.n, SEARCH_STRIDE)
    right_q = questions[state.ok.to(questions.device)]
    sub_questions = right_q[rows.to(questions.device)]
    sub_state = _State(engine, sub_questions, state.scope)
    order, searched = _necessity_order(engine, sub_questions, sub_state, outside, pool, others, threshold)
    k = _first_reaching(lambda sizes: _prefixes(engine, sub_questions, sub_state, outside, order, sizes, searched), 0, len(order), threshold)
    if sub_state.n != len(rows):  # a searched row answered wrong alone (BLAS rounding of another batch shape): measure all rows
        searched = {}
    rest = torch.ones(state.n, dtype=torch.bool)
    rest[rows] = False
    measured: dict[int, torch.Tensor] = {}

    def on_all(sizes: list[int]) -> list[torch.Tensor]:
        todo = [n for n in sizes if n not in measured]
        known = [n for n in todo if n in searched]
        if known:  # the search measured these prefixes on its rows: measure the other rows only
            out = _State.right_all(engine.run(right_q[rest.to(questions.device)], [_without(outside, set(order[:n])) for n in known]).correct, state.tokens)
            for i, n in enumerate(known):
                full = torch.empty(state.n, out.shape[-1], dtype=torch.bool)
                full[rows], full[rest] = searched[n], out[i]
                measured[n] = full
        _prefixes(engine, questions, state, outside, order, [n for n in todo if n not in searched], measured)
        return [measured[n] for n in sizes]

    if k and _share(on_all([k])[0].all(dim=1)) < threshold and k < len(order):
        k = _first_reaching(on_all, k, len(order), threshold)
    sizes = _step_sizes(k)
    on_all(sizes)
    return _steps(state, base, order, sizes, [measured[n] for n in sizes])


def _prefixes(engine, questions, state, outside, order, sizes, into: dict[int, torch.Tensor]) -> list[torch.Tensor]:
    """[n, A'] correctness with the first ``n`` sites of ``order`` kept, for each ``n`` in ``sizes`` (kept in ``into``)."""
    todo = [n for n in sizes if n not in into]
    if todo:
        into.update(zip(todo, state.right(engine.run(questions, [_without(outside, set(order[:n])) for n in todo]).correct)))
    return [into[n] for n in sizes]


def _first_reaching(measure, low: int, high: int, threshold: float) -> int:
    """The smallest prefix size in (low, high] whose faithfulness reaches ``threshold`` (high when
    none does). ``measure(sizes)`` gives each size's [n, A'] correctness. Sizes double from low
    until one reaches, then the last interval is narrowed, PROBES sizes per run; between two
    measured sizes faithfulness is taken to rise with the size (more sites kept), so this finds the
    first crossing of a rising curve in a few runs instead of measuring every prefix."""
    if high <= low:
        return high

    def narrow(lo: int, probe: list[int]) -> tuple[int, int | None]:
        """The largest probe below the first that reaches, and that one (None: none reaches)."""
        hit = next((n for n, right in zip(probe, measure(probe)) if _share(right.all(dim=1)) >= threshold), None)
        if hit is None:
            return probe[-1], None
        return max([lo] + [n for n in probe if n < hit]), hit

    sizes, step = [], 1
    while low + step < high:
        sizes.append(low + step)
        step *= 2
    sizes.append(high)
    lo, hi = low, None
    for chunk in range(0, len(sizes), PROBES):
        lo, hi = narrow(lo, sizes[chunk : chunk + PROBES])
        if hi is not None:
            break
    else:
        return high
    while hi - lo > 1:
        lo, hit = narrow(lo, sorted({lo + (hi - lo) * i // (PROBES + 1) for i in range(1, PROBES + 1)} - {lo, hi}))
        hi = hit if hit is not None else hi
    return hi


def _step_sizes(k: int) -> list[int]:
    """The prefix sizes measured as the set's steps: each up to ``MAX_STEPS``; for a larger set the
    first ``MAX_STEPS // 2`` one by one (the most needed sites), then even blocks up to ``k``."""
    if k <= MAX_STEPS:
        return list(range(1, k + 1))
    head = MAX_STEPS // 2
    blocks = MAX_STEPS - head
    return list(range(1, head + 1)) + sorted({head + (k - head) * i // blocks for i in range(1, blocks + 1)})


def _necessity_order(engine, questions, state, outside, pool, others, threshold) -> tuple[list[Site], dict[int, torch.Tensor]]:
    """Sites most needed first, and the prefixes it measured (size -> [n, A'] correctness): the
    useful sites, or, when keeping all of them cannot reach the threshold on ``questions``, the
    useful sites and the others (checked with one run before the order is measured)."""
    useful = [u[0] for u in pool if len(u) == 1]
    groups = [useful] + ([useful + [u[0] for u in others]] if others else [])
    for g, group in enumerate(groups):
        kept = set(group)
        (everything,) = state.right(engine.run(questions, [_without(outside, kept)]).correct)
        if g < len(groups) - 1 and _share(everything.all(dim=1)) < threshold:
            continue
        alone = state.right(engine.run(questions, [_without(outside, kept - {s}) for s in group]).correct) if group else []
        full = _key(everything)
        drop = [(full[0] - q, full[1] - t) for q, t in map(_key, alone)]
        order = [group[i] for i in sorted(range(len(group)), key=lambda i: (-drop[i][0], -drop[i][1], i))]
        return order, {len(order): everything}
    return [], {}


def _steps(state: _State, base: torch.Tensor, order: list[Site], sizes: list[int], measured: list[torch.Tensor]) -> list[SiteRepair]:
    """One step per measured prefix size that raises faithfulness (questions fully right, then tokens
    right) over the one before (``base``: nothing kept); sites that do not are carried into the next."""
    steps: list[SiteRepair] = []
    before, unit, done = base, [], 0
    for i, (n, right) in enumerate(zip(sizes, measured)):
        unit += order[done:n]
        done = n
        if _key(right) > _key(before) or i == len(sizes) - 1:
            steps.append(state.repair(tuple(unit), before, right, _share(before.all(dim=1))))
            before, unit = right, []
    return steps
