"""Labels: what every useful site computes, found by interchange tests without a hypothesis.

For each useful head and MLP (the facts' ``useful_sites``) every variable instance the site
could carry is interchange-tested (``causal.score``, the matcher's test): every variable of
the task's operation at every column its position can read (all of the variable's digits lie
at or before the site), plus OPR, SGN and the answer digits, and only where the variable can
change an answer token the site serves. A variable with siblings (SC(n) and SS(n), the two parts
of ST(n): ``TaskVocabulary.siblings``) is tested twice, plainly and with them held equal (a
spec's ``keep``); the plain test counts when it passes, else the held one, which the label
records (``held``) and ``suggest`` writes as the node's ``keep``. Pairs come only from the
question classes the model answers (``class_accuracy``). One engine run per test scores every
site that can carry the variable, so a model costs one batch of passes per test, not per site.

Then, per site:

- the variables that pass (the matcher's bar: ``min_accuracy`` on at least ``MIN_INFORMATIVE``
  informative pairs), reduced to the most downstream ones: a variable that is an ancestor of a
  passing one in the causal model (SA(3) under A(3)) is listed as implied, not as a label;
  what is left is one label, or several for a polysemantic site (each on its own operation
  or its own columns);
- co-located heads that no variable explains alone are tested jointly (sets of 2..``max_heads``
  at one layer and position, the paper's split SA); a set that passes is a site of its own and
  its heads are ``in_set``;
- with ``neurons``, for a labelled MLP, the smallest attribution-ranked neuron set that carries
  the label (``neurons.search``, as the matcher places neuron nodes; its exact pruning is
  quadratic in the set's size, so it is off by default);
- a useful site that no variable explains is ``unexplained``, with the best test it had.

A(n) with 0 < n < digits has two routes in the causal model (its base digit and the carry
from below): half of its pairs change it through the carry alone (``TaskVocabulary.root_parents`` kept),
so a head that copies only the column's digits cannot pass it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from circuitspec.engine import Engine, Site
from circuitspec.engine.facts import Facts
from circuitspec.match import candidates, causal, neurons
from circuitspec.match.placement import Placement
from circuitspec.stats import wilson
from circuitspec.tasks.registry import vocabulary
from circuitspec.vocabulary import VarKey, key_text

Progress = Callable[[str, int, int], None]  # (stage, done, total)
SAME_AS_QUESTIONS = 256  # per class: questions on which two variables must agree to be one
CLASS_QUESTIONS = 1024  # per class: questions the model's own accuracy is measured on
LABELLER_VERSION = "3"  # 2: variables with siblings are also tested with them held; pairs only from answered classes; 3: runs read the predicted answer


@dataclass(frozen=True)
class Tested:
    """A variable's interchange score on a placement, and the variables its pairs held equal."""

    score: causal.Score
    held: tuple[VarKey, ...] = ()


class LabelParams(BaseModel):
    """What labels depend on besides the model, its facts and the engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: int = Field(256, ge=1, le=4096, description="counterfactual pairs per variable instance")
    min_accuracy: float = Field(0.9, gt=0, le=1, description="interchange accuracy a label needs")
    max_heads: int = Field(2, ge=1, le=4, description="co-located heads tested jointly (1: none)")
    neurons: bool = Field(False, description="also find each labelled MLP's smallest neuron set (slow on trained models)")
    seed: int = Field(0, description="seed of the counterfactual pairs")


class VariableScore(BaseModel):
    """One variable's interchange test on one site."""

    model_config = ConfigDict(frozen=True)

    variable: str
    accuracy: float
    low: float
    high: float
    pairs: int = Field(description="informative pairs")
    held: list[str] = Field(default_factory=list, description="variables held equal in its pairs (its siblings, ``TaskVocabulary.siblings``)")
    same_as: list[str] = Field(default_factory=list, description="variables with the same value on every question")

    @property
    def name(self) -> str:
        """``SV(0)=SC(0)``; ``SS(1) (keep SC(1))`` when its pairs held variables equal."""
        text = "=".join([self.variable, *self.same_as[:1]])
        return f"{text} (keep {', '.join(self.held)})" if self.held else text


class ClassAccuracy(BaseModel):
    """How often the model answers one question class right (``CLASS_QUESTIONS`` seeded questions)."""

    model_config = ConfigDict(frozen=True)

    cls: str
    questions: int
    accuracy: float
    low: float
    high: float
    answered: bool = Field(description="accuracy interval at or above min_accuracy: its questions are in the labels' pairs")


class NeuronLabel(BaseModel):
    model_config = ConfigDict(frozen=True)

    variable: str
    site: str
    neurons: int
    score: VariableScore


class SiteLabel(BaseModel):
    """What one useful site (or set of co-located heads) computes."""

    model_config = ConfigDict(frozen=True)

    site: str = Field(description="paper notation: P13.L0.H2, P16.L1.MLP, P16.L0.H0+H2")
    sites: list[str]
    kind: Literal["head", "mlp", "heads"]
    layer: int
    position: int
    position_label: str
    serves: list[str] = Field(description="answer tokens the site's ablation changes")
    status: Literal["labelled", "unexplained", "in_set"]
    variables: list[VariableScore] = Field(default_factory=list, description="its labels, best first")
    implied: list[str] = Field(default_factory=list, description="passing ancestors of the labels")
    best: VariableScore | None = Field(None, description="unexplained: the test that came closest")
    part_of: str | None = Field(None, description="in_set: the labelled head set it belongs to")
    neurons: list[NeuronLabel] = Field(default_factory=list)
    tested: int = Field(0, description="variable instances tested")

    @property
    def text(self) -> str:
        """``SV(2) 1.00 [0.99, 1.00]`` for each label, or why there is none."""
        if self.status == "labelled":
            return "  ".join(f"{v.name} {v.accuracy:.2f} [{v.low:.2f}, {v.high:.2f}]" for v in self.variables)
        if self.status == "in_set":
            return f"in {self.part_of}"
        if self.best is None:
            return "unexplained (no variable within reach)"
        b = self.best
        return f"unexplained (best {b.name} {b.accuracy:.2f} [{b.low:.2f}, {b.high:.2f}])"


class Labels(BaseModel):
    """Every useful site's labels for one model; stable ordering, so the same inputs give the same JSON."""

    model_config = ConfigDict(frozen=True)

    key: str
    facts_key: str
    model: str
    weights_sha256: str
    params: LabelParams
    op: str
    digits: int
    n_layers: int
    n_heads: int
    position_labels: list[str]
    answer_labels: list[str]
    variables_tested: int
    tests: int
    classes: list[ClassAccuracy] = Field(default_factory=list, description="the model's accuracy per question class")
    explains: list[str] = Field(default_factory=list, description="the answered classes the pairs came from, when not all (empty: all)")
    sites: list[SiteLabel]
    _from_cache: bool = PrivateAttr(default=False)

    @property
    def from_cache(self) -> bool:
        return self._from_cache

    def site(self, name: str) -> SiteLabel:
        for s in self.sites:
            if s.site == name:
                return s
        from circuitspec.errors import EngineError

        raise EngineError(f"no label for site {name}", hint="labels cover the useful sites and labelled head sets")

    def counts(self) -> dict[str, int]:
        out = {"labelled": 0, "unexplained": 0, "in_set": 0}
        for s in self.sites:
            out[s.status] += 1
        return out

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


# ---- which variables a site could carry ------------------------------------------------------


def variable_keys(task) -> list[VarKey]:
    """Every variable instance of the task (OPR only where both operators occur)."""
    digits = task.layout.digits
    out: list[VarKey] = []
    for name, var in vocabulary(task.op).variables.items():
        if name == "OPR" and task.op != "mix":
            continue
        out += [(name, n) for n in var.digit_range(digits)] if var.per_digit else [(name, None)]
    return out


def _seed(seed: int, *parts) -> int:
    digest = hashlib.sha256(repr((seed, "label", *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


Test = tuple[VarKey, tuple[VarKey, ...]]  # a variable instance and the variables its pairs hold equal


def tests_of(task) -> list[Test]:
    """Every variable instance, then again with its siblings held equal where it has some
    (SC(n) with SS(n) kept, as a hand-written spec's ``keep`` tests it)."""
    voc, digits = vocabulary(task.op), task.layout.digits
    keys = variable_keys(task)
    return [(k, ()) for k in keys] + [(k, voc.siblings(k, digits)) for k in keys if voc.siblings(k, digits)]


def class_accuracy(engine: Engine, params: LabelParams) -> list[ClassAccuracy]:
    """The model's accuracy on each question class, and whether it answers it.

    A label says the model computes a variable. On a class the model answers less often than a
    label must follow the causal model (``min_accuracy``), the rows it happens to get right are
    not its algorithm at work (a 1-layer model on carry cascades, S3+, the paper's point), so the
    labels' pairs come only from the classes it answers: those whose accuracy interval lies at
    or above the bar (its lower end: a class measured near the bar is not claimed), as a spec's
    ``explains`` limits the matcher's pairs."""
    out = []
    for c in engine.task.available_classes():
        q = engine.questions(CLASS_QUESTIONS, seed=_seed(params.seed, "classes"), cls=c)
        right = int(engine.clean(q).question_correct.sum())
        acc, low, high = wilson(right, len(q))
        out.append(ClassAccuracy(cls=c, questions=len(q), accuracy=round(acc, 6), low=round(low, 6), high=round(high, 6), answered=low >= params.min_accuracy))
    return out


def explained(classes: Sequence[ClassAccuracy]) -> list[str]:
    """The answered classes when the model fails some (empty: all, also when it answers none)."""
    answered = [c.cls for c in classes if c.answered]
    return answered if answered and len(answered) < len(classes) else []


def _pairs(engine: Engine, test: Test, params: LabelParams, explains: Sequence[str]) -> causal.Pairs:
    """The test's pairs; for a two-route variable, half of them through the non-digit route."""
    task = engine.task
    key, held = test
    voc, digits = vocabulary(task.op), task.layout.digits
    ps = voc.parents(key, digits)
    if len(ps) == 1 and key[0] == "A":  # the top digit is the top carry: test it through both its routes
        p = causal.draw_pairs(engine, ps[0], n_pairs=params.pairs, keep=held, seed=_seed(params.seed, key), explains=explains)
        return causal.Pairs(key=key, base=p.base, source=p.source, predicted=p.predicted, gold=p.gold, dropped=p.dropped)
    seed = _seed(params.seed, key, held) if held else _seed(params.seed, key)
    roots = voc.root_parents(key, digits)
    if not roots:
        return causal.draw_pairs(engine, key, n_pairs=params.pairs, keep=held, seed=seed, explains=explains)
    route = causal.draw_pairs(engine, key, n_pairs=params.pairs // 2, keep=(*held, *roots), seed=_seed(params.seed, key, roots), explains=explains)
    direct = causal.draw_pairs(engine, key, n_pairs=params.pairs - len(route.base), keep=held, seed=seed, explains=explains)
    return direct.joined(route)


class _Relations:
    """How variable instances relate on a sample of questions: ``finer[v]`` holds the keys
    that determine v (v is a function of them), measured once per labelling."""

    def __init__(self, engine: Engine, keys: Sequence[VarKey], seed: int) -> None:
        task = engine.task
        classes = task.available_classes()
        tokens = torch.cat([engine.questions(SAME_AS_QUESTIONS, seed=_seed(seed, "relations"), cls=c) for c in classes])
        values = task.all_variables(tokens)
        column = {k: (values[k[0]] if k[1] is None else values[k[0]][:, k[1]]).long() for k in keys}
        distinct = {k: len(torch.unique(v)) for k, v in column.items()}
        self.finer: dict[VarKey, set[VarKey]] = {k: set() for k in keys}
        for u, v in itertools.permutations(keys, 2):
            if len(torch.unique(column[u] * 16 + column[v])) == distinct[u]:
                self.finer[v].add(u)

    def function_of(self, v: VarKey, u: VarKey) -> bool:
        return u in self.finer[v]

    def same(self, u: VarKey, v: VarKey) -> bool:
        return self.function_of(u, v) and self.function_of(v, u)


def _inert(engine: Engine, pairs: causal.Pairs, coarse: VarKey) -> bool:
    """Whether ``pairs.key``'s values beyond ``coarse`` (a function of it) never change the
    answer: patching ``coarse`` from each source predicts the same answer as patching the key
    (ST(0)'s 'uncertain' is 'none' for the answer, so ST(0) acts as SV(0))."""
    if not len(pairs.base):
        return False
    task = engine.task
    name, n = coarse
    value = task.variable(pairs.source, name, n)
    return bool(torch.equal(task.causal_answer(pairs.base, {coarse: value}), pairs.predicted))


# ---- labelling --------------------------------------------------------------------------------


class _Run:
    """State shared by the steps of one labelling: pairs per variable, served tokens, counts."""

    def __init__(self, engine: Engine, facts: Facts, params: LabelParams, tell: Progress) -> None:
        self.engine, self.facts, self.params, self.tell = engine, facts, params, tell
        self.keys = variable_keys(engine.task)
        self.plan = tests_of(engine.task)
        self.classes = class_accuracy(engine, params)
        self.explains = explained(self.classes)
        self.relations = _Relations(engine, self.keys, params.seed)
        self._inert: dict[tuple[VarKey, VarKey], bool] = {}
        self._pairs: dict[Test, causal.Pairs] = {}
        self._scope: dict[Test, set[str]] = {}
        self.tests = 0

    def served(self, sites: Sequence[Site]) -> set[str]:
        return candidates.served(sites, self.facts, self.engine)

    def pairs(self, test: Test) -> causal.Pairs:
        if test not in self._pairs:
            p = _pairs(self.engine, test, self.params, self.explains)
            self._pairs[test] = p
            changes = (p.predicted != p.gold).any(dim=0).tolist() if len(p.base) else []
            self._scope[test] = {lab for lab, c in zip(self.engine.answer_labels, changes) if c}
        return self._pairs[test]

    def testable(self, test: Test, sites: Sequence[Site], served: set[str]) -> bool:
        """The variable lies within the sites' reach and can change a token they serve."""
        if min(s.position for s in sites) < self.engine.task.first_position(test[0]):
            return False
        self.pairs(test)
        return bool(self._scope[test] & served)

    def score_all(self, placements: Sequence[tuple[Site, ...]], stage: str) -> list[dict[VarKey, Tested]]:
        """Every testable variable on every placement: one engine run per test (a variable,
        or a variable with its siblings held); per variable, the test that counts (``_better``).

        Test by test: its pairs are drawn (the clean passes of their questions and sources
        kept in the engine's recall) and at once scored, which reads those passes back.
        Drawing every test's pairs first would evict the early ones' passes (a 6-digit
        model's variables need some GB of them) and run each clean pass twice."""
        served = [self.served(p) for p in placements]
        out: list[dict[VarKey, Tested]] = [{} for _ in placements]
        for done, test in enumerate(self.plan):
            self.tell(stage, done, len(self.plan))
            idx = [i for i, p in enumerate(placements) if self.testable(test, p, served[i])]
            if not idx:
                continue
            scores = causal.score(self.engine, self._pairs[test], [placements[i] for i in idx], [served[i] for i in idx])
            self.tests += len(idx)
            key, held = test
            for i, s in zip(idx, scores):
                mine = Tested(s, held)
                out[i][key] = self._better(out[i][key], mine) if key in out[i] else mine
        self.tell(stage, len(self.plan), len(self.plan))
        return out

    def _better(self, plain: Tested, held: Tested) -> Tested:
        """The plain test when it passes (the stronger claim), else the held one when it does,
        else the closer of the two."""
        if self.passed(plain.score) or not self.passed(held.score) and plain.score.accuracy[0] >= held.score.accuracy[0]:
            return plain
        return held

    def variable_score(self, t: Tested) -> VariableScore:
        s = t.score
        acc, low, high = s.accuracy
        return VariableScore(
            variable=key_text(s.key), accuracy=round(acc, 6), low=round(low, 6), high=round(high, 6),
            pairs=s.informative, held=[key_text(k) for k in t.held],
            same_as=[key_text(k) for k in self.keys if k != s.key and self.equivalent(s.key, k)],
        )

    def equivalent(self, u: VarKey, v: VarKey) -> bool:
        """u and v are one variable as far as the answer goes: the same values, or u finer than
        v with its extra values inert (either way round)."""
        rel = self.relations
        if rel.same(u, v):
            return True
        if rel.function_of(v, u):
            return self.inert(u, v)
        return rel.function_of(u, v) and self.inert(v, u)

    def inert(self, fine: VarKey, coarse: VarKey) -> bool:
        if (fine, coarse) not in self._inert:
            self._inert[(fine, coarse)] = _inert(self.engine, self.pairs((fine, ())), coarse)
        return self._inert[(fine, coarse)]

    def passed(self, s: causal.Score) -> bool:
        return Placement(sites=(), scores=(s,), min_accuracy=self.params.min_accuracy).passed


def choose(scores: dict[VarKey, Tested], run: "_Run") -> tuple[list[VarKey], list[VarKey]]:
    """(labels, implied) among the passing variables.

    A variable is dropped when a passing one determines it and carries more that matters (SC(1)
    under ST(1)); of variables that are one as far as the answer goes (``_Run.equivalent``) the
    most downstream is kept; then ancestors of a kept variable are implied (SA(3) under A(3)).
    What is left, most downstream first, are the labels: several only for a polysemantic site.
    """
    task = run.engine.task
    voc, digits = vocabulary(task.op), task.layout.digits
    passing = [k for k, t in scores.items() if run.passed(t.score)]
    depth = {k: len(voc.ancestors(k, digits)) for k in passing}
    order = sorted(passing, key=lambda k: (-depth[k], -scores[k].score.accuracy[0], key_text(k)))
    rel = run.relations
    coarser = {v for v in passing for u in passing if u != v and rel.function_of(v, u) and not run.equivalent(u, v)}
    labels: list[VarKey] = []
    implied: list[VarKey] = []
    for k in order:
        merged = any(run.equivalent(k, c) for c in labels)
        ancestor = any(k in voc.ancestors(c, digits) for c in labels)
        (implied if k in coarser or merged or ancestor else labels).append(k)
    return labels, sorted(implied, key=key_text)


def _closest(scores: dict[VarKey, Tested]) -> Tested | None:
    tried = [t for t in scores.values() if t.score.informative]
    return max(tried, key=lambda t: (t.score.accuracy[0], t.score.informative, key_text(t.score.key)), default=None)


def _record(run: _Run, sites: tuple[Site, ...], scores: dict[VarKey, Tested]) -> SiteLabel:
    lay = run.engine.layout
    labels, implied = choose(scores, run)
    first = sites[0]
    kind = "heads" if len(sites) > 1 else first.kind
    best = _closest(scores) if not labels else None
    return SiteLabel(
        site=_name(sites),
        sites=[str(s) for s in sites],
        kind=kind,
        layer=first.layer,
        position=first.position,
        position_label=lay.label(first.position),
        serves=[lab for lab in run.engine.answer_labels if lab in run.served(sites)],
        status="labelled" if labels else "unexplained",
        variables=[run.variable_score(scores[k]) for k in labels],
        implied=[key_text(k) for k in implied],
        best=run.variable_score(best) if best is not None else None,
        tested=len(scores),
    )


def _name(sites: Sequence[Site]) -> str:
    """Paper notation; co-located heads joined with ``+`` (``P16.L0.H0+H2``)."""
    if len(sites) == 1:
        return str(sites[0])
    s = sites[0]
    return f"P{s.position}.L{s.layer}." + "+".join(f"H{x.head}" for x in sites)


def _head_sets(unexplained: Sequence[Site], max_heads: int) -> list[tuple[Site, ...]]:
    """Sets of 2..max_heads useful heads at one layer and position that no variable explains alone."""
    groups: dict[tuple[int, int], list[Site]] = {}
    for s in unexplained:
        if s.kind == "head":
            groups.setdefault((s.layer, s.position), []).append(s)
    out: list[tuple[Site, ...]] = []
    for key in sorted(groups):
        heads = sorted(groups[key])
        for k in range(2, min(max_heads, len(heads)) + 1):
            out.extend(itertools.combinations(heads, k))
    return out


def _minimal_sets(records: list[SiteLabel]) -> list[SiteLabel]:
    """Labelled head sets none of whose subsets is a labelled set with the same labels."""
    labelled = [r for r in records if r.status == "labelled"]
    keep = []
    for r in labelled:
        mine = {v.variable for v in r.variables}
        if not any(set(o.sites) < set(r.sites) and mine <= {v.variable for v in o.variables} for o in labelled):
            keep.append(r)
    return keep


def _neuron_labels(run: _Run, record: SiteLabel) -> list[NeuronLabel]:
    """The smallest attribution-ranked neuron set of a labelled MLP that carries each label."""
    mlp = Site.parse(record.site)
    out = []
    for v in record.variables:
        key = next(k for k in run.keys if key_text(k) == v.variable)
        pairs = run.pairs((key, tuple(k for k in run.keys if key_text(k) in v.held)))

        def evaluate(placements: Sequence[tuple[Site, ...]]) -> list[Placement]:
            served = [run.served(p) for p in placements]
            run.tests += len(placements)
            return [
                Placement(sites=p, scores=(s,), min_accuracy=run.params.min_accuracy)
                for p, s in zip(placements, causal.score(run.engine, pairs, placements, served))
            ]

        found = [e for e in neurons.search([mlp], run.engine, [pairs], evaluate) if e.passed]
        if found:
            site = found[0].sites[0]
            score = run.variable_score(Tested(found[0].scores[0], tuple(k for k in run.keys if key_text(k) in v.held)))
            out.append(NeuronLabel(variable=v.variable, site=str(site), neurons=len(site.neurons), score=score))
    return out


def label(engine: Engine, facts: Facts, params: LabelParams | None = None, *, key: str = "", progress: Progress | None = None) -> Labels:
    """Label every useful site of ``engine``'s model (no cache; see ``verify.labels``)."""
    params = params or LabelParams()
    run = _Run(engine, facts, params, progress or (lambda stage, done, total: None))
    useful = [Site.parse(s) for s in facts.useful_sites]
    useful = [s for s in useful if s.kind in ("head", "mlp")]
    singles = [(s,) for s in useful]
    records = [_record(run, p, sc) for p, sc in zip(singles, run.score_all(singles, "sites"))]

    sets: list[SiteLabel] = []
    if params.max_heads > 1:
        loose = [Site.parse(r.site) for r in records if r.status == "unexplained" and r.kind == "head"]
        candidates_ = _head_sets(loose, params.max_heads)
        tried = [_record(run, p, sc) for p, sc in zip(candidates_, run.score_all(candidates_, "head sets"))]
        sets = _minimal_sets(tried)
    member = {s: r.site for r in sets for s in r.sites}
    records = [r.model_copy(update={"status": "in_set", "part_of": member[r.site]}) if r.site in member else r for r in records]

    if params.neurons:
        mlps = [r for r in records if r.kind == "mlp" and r.status == "labelled"]
        for i, r in enumerate(mlps):
            run.tell("neurons", i, len(mlps))
            records[records.index(r)] = r.model_copy(update={"neurons": _neuron_labels(run, r)})
        run.tell("neurons", len(mlps), len(mlps))

    everything = sorted(records + sets, key=lambda r: (Site.parse(r.sites[0]).sort_key, len(r.sites), r.site))
    lay = engine.layout
    return Labels(
        key=key,
        facts_key=facts.key,
        model=engine.name,
        weights_sha256=engine.weights_hash(),
        params=params,
        op=engine.task.op,
        digits=lay.digits,
        n_layers=engine.shape.n_layers,
        n_heads=engine.shape.n_heads,
        position_labels=[lay.label(p) for p in range(lay.n_ctx)],
        answer_labels=list(engine.answer_labels),
        variables_tested=len({k for k, _ in run._pairs}),
        tests=run.tests,
        classes=run.classes,
        explains=run.explains,
        sites=everything,
    )
