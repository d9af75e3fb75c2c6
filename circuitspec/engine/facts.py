"""Facts: what the engine measured about each site of a model, computed once and cached.

For every head and MLP site (every layer, every position), on class-stratified questions
(``task.generate(n, g, cls=...)``, kept disjoint from the reference set):

- failures under mean ablation: which questions the clean model got right and now gets
  wrong, per answer token (``impacts``: the answer tokens that go wrong on at least
  ``impact_threshold`` of the questions) and per question class;
- ``useful``: ablating it makes at least ``useful_min_failures`` questions fail (the
  paper's criterion with the default of 1); useful positions hold a useful site;
- for heads, where the head attends from its position (mean share per source position);
- for useful sites (or all, ``probe_sites="all"``), how well the site's output encodes
  each of the task's variables (held-out ridge-probe accuracy, with chance level) and,
  for TriCase variables, the paper's 3-cluster check.

``Facts`` is a pydantic model with a stable ordering (sites in ``Site`` order, variables
in the task's order), so the same model and parameters always give the same JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from circuitspec.engine.cache import JsonCache, make_key, task_settings
from circuitspec.engine.interventions import Intervention
from circuitspec.engine.probe import probe, tricase_clusters
from circuitspec.engine.runner import ENGINE_VERSION, Engine, mix_seed
from circuitspec.engine.sites import Site
from circuitspec.errors import EngineError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class FactsParams(BaseModel):
    """Everything facts depend on besides the model, the task and the engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: int = Field(500, ge=1, description="ablation questions, split evenly over the task's classes")
    seed: int = Field(0, description="seed of the question draws")
    ablation: Literal["mean", "zero", "resample"] = "mean"
    impact_threshold: float = Field(0.01, ge=0, le=1, description="share of questions an answer token must fail on")
    useful_min_failures: int = Field(1, ge=1, description="questions that must fail for a site to be useful")
    attention_min_share: float = Field(0.02, ge=0, le=1, description="attention shares below this are left out")
    probe_questions: int = Field(1200, ge=0, description="questions for the probes (0: no probes)")
    probe_sites: Literal["useful", "all"] = "useful"
    probe_train_frac: float = Field(0.5, gt=0, lt=1)
    tricase_per_case: int = Field(200, ge=0, description="questions per case for the 3-cluster check (0: none)")

    @classmethod
    def preset(cls, seed: int = 0, **changes: Any) -> "FactsParams":
        """The facts every entry point measures unless told otherwise (``verify``, ``scan``,
        ``Engine.facts``), so they all share one cache entry per model and seed.

        No probes: the matcher tests variables by interchange, not by probing; ask for
        ``probe_questions=1200`` (and ``tricase_per_case``) to see what sites encode.
        """
        return cls(**{"seed": seed, "probe_questions": 0, "tricase_per_case": 0, **changes})


class AttentionShare(BaseModel):
    model_config = ConfigDict(frozen=True)
    position: int
    label: str
    share: float


class ProbeFact(BaseModel):
    model_config = ConfigDict(frozen=True)
    accuracy: float
    chance: float
    clusters: float | None = Field(None, description="TriCase only: purity of the 3-cluster check")
    clusters_distinct: bool | None = Field(None, description="TriCase only: the 3 clusters map to the 3 cases")


class SiteFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    site: str
    kind: str
    layer: int
    position: int
    position_label: str
    head: int | None = None
    useful: bool
    failures: int = Field(description="questions right in the clean model and wrong with the site ablated")
    failure_rate: float
    impacts: list[str] = Field(description="answer tokens wrong on at least impact_threshold of the questions")
    answer_failure_rate: dict[str, float]
    failing_classes: list[str]
    class_failure_rate: dict[str, float]
    attention: list[AttentionShare] = Field(default_factory=list)
    probes: dict[str, ProbeFact] = Field(default_factory=dict)

    @property
    def as_site(self) -> Site:
        return Site.parse(self.site)

    def top_attention(self, k: int = 2) -> list[AttentionShare]:
        return sorted(self.attention, key=lambda a: (-a.share, a.position))[:k]

    def best_probes(self, k: int = 3, margin: float = 0.0) -> list[tuple[str, ProbeFact]]:
        """Variables this site's output encodes best (by accuracy above chance)."""
        items = [(n, p) for n, p in self.probes.items() if p.accuracy - p.chance > margin]
        return sorted(items, key=lambda np_: (-(np_[1].accuracy - np_[1].chance), np_[0]))[:k]


class Facts(BaseModel):
    model_config = ConfigDict(frozen=True)

    engine_version: str
    engine_path: str = Field("fast", description="the engine path that measured them: 'fast' or 'hooked' (engine.hooked)")
    key: str
    model: str
    weights_sha256: str
    task: dict[str, Any]
    engine_seed: int
    reference_size: int
    params: FactsParams
    questions: int
    class_counts: dict[str, int]
    answer_labels: list[str]
    clean_failure_rate: float
    clean_class_failure_rate: dict[str, float]
    sites: list[SiteFacts]
    useful_sites: list[str]
    useful_positions: list[int]
    _from_cache: bool = PrivateAttr(default=False)

    @property
    def from_cache(self) -> bool:
        return self._from_cache

    def site(self, site: Site | str) -> SiteFacts:
        name = str(Site.parse(site) if isinstance(site, str) else site)
        for s in self.sites:
            if s.site == name:
                return s
        raise EngineError(f"no facts for site {name}", hint="facts cover every head and MLP site")

    def useful(self) -> list[SiteFacts]:
        return [s for s in self.sites if s.useful]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def facts_key(engine: Engine, params: FactsParams) -> str:
    return make_key(
        "facts",
        {
            "weights": engine.weights_hash(),
            "task": task_settings(engine.task),
            "engine_version": ENGINE_VERSION,
            "engine_seed": engine.seed,
            "reference_size": engine.reference_size,
            "params": params.model_dump(mode="json"),
        },
    )


def load_or_compute(
    engine: Engine,
    params: FactsParams | None = None,
    *,
    cache: JsonCache | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Facts:
    """Facts from the cache when present, else computed and stored (default: ``FactsParams.preset``)."""
    params = params or FactsParams.preset(engine.seed)
    key = facts_key(engine, params)
    store = cache or JsonCache()
    if use_cache:
        text = store.read(key)
        if text is not None:
            try:
                facts = Facts.model_validate_json(text)
                if facts.key == key:
                    facts._from_cache = True
                    return facts
            except ValueError as err:
                log.warning("ignoring an unreadable facts cache entry %s: %s", store.path(key), err)
            store.hits -= 1
            store.misses += 1
    facts = compute(engine, params, key=key, progress=progress)
    if use_cache:
        store.write(key, facts.to_json())
    return facts


def _round(x: float) -> float:
    return float(round(x, 6))


def stratified_questions(engine: Engine, total: int, seed: int, salt: str) -> torch.Tensor:
    task = engine.task
    names = list(task.available_classes()) if hasattr(task, "available_classes") else list(task.class_names)
    per = max(1, math.ceil(total / len(names)))
    parts = [engine.questions(per, seed=mix_seed(salt, seed, c), cls=c) for c in names]
    return torch.cat(parts)


@torch.no_grad()
def compute(engine: Engine, params: FactsParams, *, key: str = "", progress: Progress | None = None) -> Facts:
    """Measure the facts of every head and MLP site (no cache; see ``load_or_compute``).

    Its numbered steps (ablation of every site, attention, probes, the per-site records) share
    the question set and the per-site tables, so it stays one function (about 90 lines).
    """
    task, layout = engine.task, engine.layout
    tell = progress or (lambda stage, done, total: None)
    questions = stratified_questions(engine, params.questions, params.seed, "facts")
    class_names = list(task.class_names)
    cls = task.classes(questions).cpu()
    sites = engine.sites()

    # 1. ablation of every site, in batches so progress can be shown
    ivs = [Intervention(params.ablation, [s], seed=params.seed) for s in sites]
    clean = engine.clean(questions, recall="questions")  # the pass the ablation runs read
    clean_ok = clean.question_correct.cpu()
    wrong_tok = torch.empty(len(sites), questions.shape[0], len(engine.answer_positions), dtype=torch.bool)
    step = max(1, len(ivs) // 10)
    for start in range(0, len(ivs), step):
        tell("ablations", start, len(ivs))
        out = engine.run(questions, ivs[start : start + step])
        wrong_tok[start : start + step] = (~out.correct.cpu()) & clean_ok[None, :, None]
    tell("ablations", len(ivs), len(ivs))
    wrong_q = wrong_tok.any(-1)  # [S, B]

    # 2. attention of every head from its own position
    shares: dict[tuple[int, int, int], list[AttentionShare]] = {}
    _, cache = engine.clean_pass(questions, [], capture=("pattern",))
    for s in sites:
        if s.kind != "head":
            continue
        row = cache["pattern"][s.layer][:, s.head, s.position, : s.position + 1].mean(0).cpu()
        shares[(s.layer, s.position, s.head)] = [
            AttentionShare(position=p, label=layout.label(p), share=_round(float(v)))
            for p, v in enumerate(row)
            if float(v) >= params.attention_min_share
        ]
    del cache

    counts = {c: int((cls == i).sum()) for i, c in enumerate(class_names)}
    useful = wrong_q.sum(1) >= params.useful_min_failures

    # 3. probes of the sites' outputs
    probe_results: dict[Site, dict[str, Any]] = {}
    to_probe = [s for s, u in zip(sites, useful.tolist()) if u or params.probe_sites == "all"]
    if params.probe_questions and to_probe:
        probe_results = _probes(engine, params, to_probe, tell)

    site_facts = []
    for i, s in enumerate(sites):
        wq = wrong_q[i]
        per_tok = wrong_tok[i].float().mean(0)
        class_rate = {c: _round(float(wq[cls == k].float().mean())) if counts[c] else 0.0 for k, c in enumerate(class_names)}
        site_facts.append(
            SiteFacts(
                site=str(s),
                kind=s.kind,
                layer=s.layer,
                position=s.position,
                position_label=layout.label(s.position),
                head=s.head,
                useful=bool(useful[i]),
                failures=int(wq.sum()),
                failure_rate=_round(float(wq.float().mean())),
                impacts=[lab for lab, r in zip(engine.answer_labels, per_tok.tolist()) if r > 0 and r >= params.impact_threshold],
                answer_failure_rate={lab: _round(r) for lab, r in zip(engine.answer_labels, per_tok.tolist())},
                failing_classes=[c for c in class_names if counts[c] and class_rate[c] > 0],
                class_failure_rate=class_rate,
                attention=shares.get((s.layer, s.position, s.head), []) if s.kind == "head" else [],
                probes=probe_results.get(s, {}),
            )
        )
    useful_sites = [f.site for f in site_facts if f.useful]
    return Facts(
        engine_version=ENGINE_VERSION,
        engine_path=engine.path,
        key=key,
        model=engine.name,
        weights_sha256=engine.weights_hash(),
        task=task_settings(task),
        engine_seed=engine.seed,
        reference_size=engine.reference_size,
        params=params,
        questions=int(questions.shape[0]),
        class_counts=counts,
        answer_labels=list(engine.answer_labels),
        clean_failure_rate=_round(1.0 - float(clean_ok.float().mean())),
        clean_class_failure_rate={
            c: _round(1.0 - float(clean_ok[cls == k].float().mean())) if counts[c] else 0.0 for k, c in enumerate(class_names)
        },
        sites=site_facts,
        useful_sites=useful_sites,
        useful_positions=sorted({f.position for f in site_facts if f.useful}),
    )


def variable_labels(task: Any, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every variable instance the task's operation uses, as 'SA3' / 'OPR' -> LongTensor[N]."""
    op = getattr(task, "op", None)
    digits = task.layout.digits
    values = task.all_variables(tokens) if hasattr(task, "all_variables") else None
    out: dict[str, torch.Tensor] = {}
    for name, var in task.variables.items():
        if op not in (None, "mix") and op not in var.ops:
            continue
        if not var.per_digit:
            y = values[name] if values is not None and name in values else task.variable(tokens, name)
            out[name] = y.long().cpu()
            continue
        for n in var.digit_range(digits):
            if values is not None and name in values:
                y = values[name][:, n]
            else:
                y = task.variable(tokens, name, n)
            out[f"{name}{n}"] = y.long().cpu()
    return {k: v for k, v in out.items() if len(torch.unique(v)) > 1}


def site_outputs(engine: Engine, tokens: torch.Tensor, sites: list[Site]) -> dict[Site, torch.Tensor]:
    """What each site writes: a head's z at its position [N, d_head], an MLP's output [N, d_model]."""
    _, cache = engine.clean_pass(tokens, [], capture=("z", "mlp_out", "post", "resid_pre"))
    out = {}
    for s in sites:
        if s.kind == "head":
            out[s] = cache["z"][s.layer][:, s.position, s.head].cpu()
        elif s.kind == "mlp":
            out[s] = cache["mlp_out"][s.layer][:, s.position].cpu()
        elif s.kind == "neurons":
            out[s] = cache["post"][s.layer][:, s.position, list(s.neurons)].cpu()
        else:
            out[s] = cache["resid_pre"][s.layer + 1][:, s.position].cpu()
    return out


def probe_sites(engine: Engine, sites: list[Site | str], params: FactsParams | None = None) -> dict[Site, dict[str, ProbeFact]]:
    """How well each site's output encodes each of the task's variables (see ``FactsParams``)."""
    parsed = [Site.parse(s) if isinstance(s, str) else s for s in sites]
    for s in parsed:
        s.check(engine.shape)
    with torch.no_grad():
        return _probes(engine, params or FactsParams(), parsed, lambda *a: None)


def _probes(engine: Engine, params: FactsParams, sites: list[Site], tell: Progress) -> dict[Site, dict[str, ProbeFact]]:
    task = engine.task
    tokens = stratified_questions(engine, params.probe_questions, params.seed, "probe")
    labels = variable_labels(task, tokens)
    feats = site_outputs(engine, tokens, sites)
    tricase = [n for n, v in task.variables.items() if v.values == 3 and v.per_digit]
    tri_sets: dict[str, tuple[dict[Site, torch.Tensor], torch.Tensor]] = {}
    if params.tricase_per_case and hasattr(task, "tricase_questions"):
        for name in tricase:
            for n in task.variables[name].digit_range(task.layout.digits):
                key = f"{name}{n}"
                if key not in labels:
                    continue
                g = torch.Generator().manual_seed(mix_seed("tricase", engine.seed, params.seed, key))
                try:
                    toks, cases = task.tricase_questions(n, params.tricase_per_case, g, name=name)
                except Exception as err:  # a task that cannot build them for this column
                    log.info("no tri-case questions for %s: %s", key, err)
                    continue
                tri_sets[key] = (site_outputs(engine, toks.to(engine.device), sites), cases.cpu())
    results: dict[Site, dict[str, ProbeFact]] = {}
    for k, s in enumerate(sites):
        tell("probes", k, len(sites))
        g = torch.Generator().manual_seed(mix_seed("probe", engine.seed, params.seed, str(s)))
        scores = probe(feats[s], labels, g, train_frac=params.probe_train_frac)
        facts = {}
        for name in labels:
            sc = scores[name]
            clusters = distinct = None
            if name in tri_sets:
                feats_t, cases = tri_sets[name]
                gc = torch.Generator().manual_seed(mix_seed("clusters", engine.seed, params.seed, str(s), name))
                cs = tricase_clusters(feats_t[s], cases, gc)
                clusters, distinct = _round(cs.purity), cs.distinct
            facts[name] = ProbeFact(accuracy=_round(sc.accuracy), chance=_round(sc.chance), clusters=clusters, clusters_distinct=distinct)
        results[s] = facts
    tell("probes", len(sites), len(sites))
    return results
