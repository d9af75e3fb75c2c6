"""The verify core: hypothesis x model -> Verdict. Every front end is thin over this.

Facts are measured once per model (and cached on disk by the engine), then each
hypothesis is expanded for the model's shape, matched, measured and judged:

- a node is *confirmed* when the solver placed it on a placement that passed its
  interchange test; *unconfirmed* when no placement passed but the best one's
  interval still reaches the threshold (too little evidence either way); *not placed*
  otherwise, with the reason;
- an edge is *confirmed* when its path-patching test on the chosen sites passes
  (``match.edges``), *unconfirmed* when the evidence is too thin either way, *failed*
  otherwise, *untested* when an endpoint is not placed;
- the hypothesis *holds* when every required node and edge is confirmed and every
  circuit-level check passes; it *fails* when a required node is not placed, a required
  edge fails or a check's whole interval misses its threshold; otherwise it is *inconclusive*.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from circuitspec.engine import Engine
from circuitspec.engine.cache import JsonCache
from circuitspec.engine.facts import FactsParams, load_or_compute
from circuitspec.match.edges import EdgeResult
from circuitspec.match.matcher import Match, Memo, NodeResult, match
from circuitspec.match.placement import MIN_INFORMATIVE, Placement
from circuitspec.spec import Hypothesis, applies_to, expand, load
from circuitspec.verify import gap, metrics
from circuitspec.verify.accuracy import explained_accuracy
from circuitspec.vocabulary import key_text
from circuitspec.verify.verdict import (
    PlacementEvidence,
    CircuitMetrics,
    EdgeVerdict,
    Estimate,
    ModelLayout,
    NodeVerdict,
    SiteNote,
    VariableTest,
    Verdict,
)

METRIC_QUESTIONS_PER_CLASS = 50


def verify(
    hypothesis: Hypothesis | str | os.PathLike, model, *, seed: int = 0, cache_dir: str | os.PathLike | None = None, labels: bool = False
) -> Verdict:
    """Verify one hypothesis (object or spec file) on one model (``circuitspec.models.Model`` or name).

    Example (needs a trained model, so doctests skip it; ``tests/test_verify.py`` runs it)::

        verdict = verify("specs/addition_1layer.yaml", "add_d5_l1_h3_t6K_s372001")
        verdict.status   # 'holds'
    """
    return verify_model([hypothesis], model, seed=seed, cache_dir=cache_dir, labels=labels)[0]


def verify_model(
    hypotheses: Sequence[Hypothesis | str | os.PathLike],
    model,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    labels: bool = False,
) -> list[Verdict]:
    """Verify several hypotheses on one model, measuring its facts once (``FactsParams.preset``,
    cached in ``cache_dir``, else ``$CIRCUITSPEC_CACHE``, else ``~/.cache/circuitspec``).

    ``labels``: also label the model (``verify.labels``, cached beside the facts) and record in each
    verdict what the useful sites it left unassigned compute (``Verdict.site_labels``)."""
    from circuitspec.models import load as load_model

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    hyps = [h if isinstance(h, Hypothesis) else load(h) for h in hypotheses]
    engine = Engine(model, seed=seed)
    facts = None
    memo = Memo()  # pairs and placement scores the hypotheses share
    measured_as: dict[tuple, object] = {}  # metrics and gap reports: refinements often place the same circuit
    verdicts = []
    for h in hyps:
        applicable = applies_to(h, model.card)
        if not applicable.ok:
            verdicts.append(_not_applicable(h, model, applicable.reason, seed))
            continue
        if facts is None:
            facts = load_or_compute(engine, FactsParams.preset(seed), cache=JsonCache(cache_dir))
        graph = expand(h, model.card)
        m = match(graph, engine, facts, seed=seed, memo=memo)
        node_sites = {nid: m.sites(nid) for nid in m.assignment.chosen}
        explains = tuple(graph.graph["explains"])
        questions = metrics.metric_questions(engine, METRIC_QUESTIONS_PER_CLASS, seed, explains)
        circuit = (tuple(m.circuit), explains, tuple(m.scope))
        key = ("metrics", circuit, tuple(sorted(node_sites.items())))
        if key not in measured_as:
            measured_as[key] = metrics.measure(engine, m.circuit, node_sites, questions=questions, scope=m.scope, seed=seed)
        measured = measured_as[key]
        verdict = _judge(h, model, m, measured, facts, seed)
        if gap.falls_short(measured, h.checks.min_faithfulness, h.checks.min_completeness):
            completeness = gap.falls_short(measured, None, h.checks.min_completeness)
            key = ("gap", circuit, h.checks.min_faithfulness, completeness)
            if key not in measured_as:
                measured_as[key] = gap.measure_gap(
                    engine, m.circuit, facts.useful_sites, questions=questions, scope=m.scope, threshold=h.checks.min_faithfulness,
                    completeness=completeness, useful_positions=facts.useful_positions,
                )
            verdict = verdict.model_copy(update={"gap": measured_as[key]})
        accuracy = explained_accuracy(model.card, graph.graph["explains"], h.name)
        verdicts.append(verdict.model_copy(update={"model_accuracy": accuracy, "engine_path": engine.path}))
    if labels and any(v.status != "not_applicable" for v in verdicts):
        from circuitspec.verify.labels import load_or_label

        found = load_or_label(engine, cache_dir=cache_dir).labels
        verdicts = [v if v.status == "not_applicable" else v.model_copy(update={"site_labels": site_notes(v, found)}) for v in verdicts]
    return verdicts


def site_notes(verdict: Verdict, labels) -> list[SiteNote]:
    """What each useful site that no node of ``verdict`` holds computes, by ``labels`` (in site order)."""
    placed = {s for n in verdict.nodes for s in n.sites}
    records = {s.site: s for s in labels.sites}
    out = []
    for site in verdict.useful_sites:
        record = records.get(site)
        if site in placed or record is None:
            continue
        owner = records[record.part_of] if record.part_of else record
        computes = [v.name for v in owner.variables] if owner.status == "labelled" else []
        text = f"in {owner.site}: {owner.text}" if record.part_of else owner.text
        out.append(SiteNote(site=site, computes=computes, text=text))
    return out


def _layout(model) -> ModelLayout:
    layout = model.task.layout
    arch = model.card.architecture
    return ModelLayout(
        op=model.card.task.op,
        digits=model.card.task.digits,
        n_layers=arch.n_layers,
        n_heads=arch.n_heads,
        n_ctx=layout.n_ctx,
        position_labels=[layout.label(p) for p in range(layout.n_ctx)],
    )


def _not_applicable(h: Hypothesis, model, reason: str, seed: int) -> Verdict:
    return Verdict(
        hypothesis=h.name,
        model=model.name,
        layout=_layout(model),
        status="not_applicable",
        summary=reason,
        nodes=[],
        metrics=CircuitMetrics(),
        seed=seed,
    )


def _tests(e: Placement) -> list[VariableTest]:
    return [_test(s) for s in e.scores]


def _test(s) -> VariableTest:
    return VariableTest(
        variable=key_text(s.key),
        accuracy=_estimate(s.accuracy, s.informative),
        changed=_estimate(s.changed_share, s.informative),
        pairs=s.informative,
        example=s.example,
        failing_digits=dict(s.failing_digits),
        failing_classes=dict(s.failing_classes),
    )


def _estimate(triple: tuple[float, float, float], n: int) -> Estimate:
    value, low, high = triple
    return Estimate(value=round(value, 6), low=round(low, 6), high=round(high, 6), n=n, method="wilson")


def _evidence(e: Placement) -> PlacementEvidence:
    return PlacementEvidence(sites=[str(s) for s in e.sites], score=round(e.value, 6), tests=_tests(e), passed=e.passed)


def _node_verdict(node_id: str, r: NodeResult, m: Match) -> NodeVerdict:
    node = r.node
    common = dict(
        node=node_id,
        variables=[key_text(k) for k in node.variables],
        required=node.required,
        candidates_considered=r.considered,
    )
    e = m.assignment.chosen.get(node_id)
    if e is not None:
        others = [x for x in r.evaluated if tuple(x.sites) != tuple(e.sites)]
        return NodeVerdict(
            **common,
            status="confirmed",
            sites=[str(s) for s in e.sites],
            tests=_tests(e),
            runner_up=_evidence(others[0]) if others else None,
        )
    best = r.evaluated[0] if r.evaluated else None
    runner = _evidence(best) if best else None
    if r.considered == 0:
        where = f"{r.allowed} site(s) allowed by kind, positions and layers"
        detail = f"no candidate: {where}; none met the behaviour constraints" if r.allowed else f"no candidate: {where}"
        return NodeVerdict(**common, status="not_placed", reason="no_candidate", detail=detail, runner_up=runner)
    if r.passing:
        return NodeVerdict(
            **common,
            status="not_placed",
            reason="edge_conflict",
            detail=f"{len(r.passing)} placement(s) passed, but none fits the edges and the other nodes' sites",
            runner_up=runner,
        )
    weakest = min(best.scores, key=lambda s: s.accuracy[0])
    acc = weakest.accuracy
    figures = (
        f"best {'+'.join(str(s) for s in best.sites)}: {key_text(weakest.key)} interchange accuracy "
        f"{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}] on {weakest.informative} pairs, threshold {node.min_accuracy}"
    ) + _where_text(weakest)
    if best.plausible:
        return NodeVerdict(**common, status="unconfirmed", detail="not enough evidence: " + figures, runner_up=runner)
    return NodeVerdict(
        **common, status="not_placed", reason="failed_causal_test", detail="failed: " + figures, runner_up=runner
    )


def _where_text(score) -> str:
    """'; failing pairs wrong at A3 (40), A4 (12), in classes S2 (30), S3 (22)' ('' without failures)."""
    if not score.failing_digits:
        return ""
    digits = ", ".join(f"{d} ({k})" for d, k in sorted(score.failing_digits, key=lambda dk: (-dk[1], dk[0])))
    classes = ", ".join(f"{c} ({k})" for c, k in sorted(score.failing_classes, key=lambda ck: (-ck[1], ck[0])))
    return f"; failing pairs wrong at {digits}, in classes {classes}"


def _edge_verdict(r: EdgeResult, binding: bool = True) -> EdgeVerdict:
    weakest = r.weakest
    detail = ""
    if r.tested:
        detail = f"{'+'.join(map(str, r.sender))} -> {'+'.join(map(str, r.receiver))}"
        if weakest is not None:
            acc = weakest.accuracy
            detail += (
                f": {key_text(weakest.key)} {'through the target or around it' if r.route == 'answer' else 'through the target alone'}, accuracy {acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}]"
                f" on {weakest.informative} informative pairs, threshold {r.min_accuracy}"
            )
    else:
        detail = r.untestable or "an endpoint is not placed"
    if r.required and not binding:
        detail += " (required only where its optional endpoint is confirmed)"
    return EdgeVerdict(
        source=r.source,
        target=r.target,
        required=r.required and binding,
        status=r.status,
        accuracy=_estimate(weakest.accuracy, weakest.informative) if weakest is not None else None,
        pairs=weakest.informative if weakest is not None else 0,
        example=next((s.example for s in r.scores if s.example), None),
        tests=[_test(s) for s in r.scores],
        frozen=[str(s) for s in r.frozen],
        route=r.route,
        detail=detail,
    )


def _check(name: str, estimate: Estimate | None, threshold: float | None) -> tuple[str, str] | None:
    """('fail' | 'unsure', message) when a circuit-level check does not clearly pass."""
    if threshold is None:
        return None
    if estimate is None:
        return "fail", f"{name} not measured (nothing placed)"
    text = f"{name} {estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}] vs at least {threshold}"
    if estimate.high < threshold:
        return "fail", text
    if estimate.value < threshold:
        return "unsure", text
    return None


def _ablation_disagreement(checks, measured: CircuitMetrics) -> list[str]:
    """The circuit checks whose outcome (passes / unsure / fails) under resample ablation differs from mean ablation's."""
    if measured.resample is None:
        return []
    out = []
    for name, threshold in (("faithfulness", checks.min_faithfulness), ("completeness", checks.min_completeness)):
        mean_est, resample_est = getattr(measured, name), getattr(measured.resample, name)
        if threshold is None or mean_est is None:
            continue
        by_mean, by_resample = (_outcome(_check(name, e, threshold)) for e in (mean_est, resample_est))
        if by_mean != by_resample:
            out.append(
                f"{name} {by_mean} under mean ablation ({mean_est.value:.3f}) but {by_resample} under resample "
                f"ablation ({resample_est.value:.3f} [{resample_est.low:.3f}, {resample_est.high:.3f}]) vs at least {threshold}"
            )
    return out


def _outcome(check: tuple[str, str] | None) -> str:
    return "passes" if check is None else {"fail": "fails", "unsure": "is unsure"}[check[0]]


def _judge(h: Hypothesis, model, m: Match, measured: CircuitMetrics, facts, seed: int) -> Verdict:
    nodes = [_node_verdict(nid, m.nodes[nid], m) for nid in sorted(m.nodes)]
    required = [n for n in nodes if n.required]
    failed = [n for n in required if n.status == "not_placed"]
    unsure = [n for n in required if n.status == "unconfirmed"]
    checks = h.checks
    outcomes = [
        _check("faithfulness", measured.faithfulness, checks.min_faithfulness),
        _check("completeness", measured.completeness, checks.min_completeness),
    ]
    if checks.minimality:
        for nid, drop in sorted(measured.minimality.items()):
            if drop <= 0:
                outcomes.append(("fail", f"node {nid} is not needed (faithfulness drop {drop:.3f})"))
    check_fail = [msg for o in outcomes if o and o[0] == "fail" for msg in [o[1]]]
    check_unsure = [msg for o in outcomes if o and o[0] == "unsure" for msg in [o[1]]]

    # an edge touching an optional node that is not confirmed binds nothing: it is reported as optional
    absent = {n.node for n in nodes if not n.required and n.status != "confirmed"}
    edges = [_edge_verdict(m.edges[e], binding=not set(e) & absent) for e in sorted(m.edges)]
    # an edge left untested because a required endpoint is unplaced is already counted by that node
    needed = [e for e in edges if e.required]
    edge_fail = [e for e in needed if e.status == "failed"]
    edge_unsure = [e for e in needed if e.status == "unconfirmed"]

    placed = sum(1 for n in required if n.status == "confirmed")
    parts = [f"{placed}/{len(required)} required nodes confirmed"]
    if needed:
        parts.append(f"{sum(e.status == 'confirmed' for e in needed)}/{len(needed)} required edges confirmed")
    if failed:
        parts.append("not placed: " + ", ".join(f"{n.node} ({n.reason})" for n in failed))
    if unsure:
        parts.append("unconfirmed: " + ", ".join(n.node for n in unsure))
    if edge_fail:
        parts.append("edges failed: " + ", ".join(f"{e.source}->{e.target}" for e in edge_fail))
    if edge_unsure:
        parts.append("edges unconfirmed: " + ", ".join(f"{e.source}->{e.target}" for e in edge_unsure))
    parts += check_fail + check_unsure
    if not m.assignment.exhaustive:
        parts.append("assignment search stopped early (best found so far)")
    disagreement = _ablation_disagreement(checks, measured)
    parts += disagreement
    bad, doubt = failed or edge_fail or check_fail, unsure or edge_unsure or check_unsure
    status = "fails" if bad else "inconclusive" if doubt else "holds"
    return Verdict(
        hypothesis=h.name,
        model=model.name,
        layout=_layout(model),
        edges=sorted((u, v) for u, v in m.graph.edges),
        edge_results=edges,
        status=status,
        summary="; ".join(parts),
        nodes=nodes,
        metrics=measured,
        useful_sites=[str(s) for s in facts.useful_sites],
        ablation_disagreement=disagreement,
        seed=seed,
        settings={"min_informative_pairs": MIN_INFORMATIVE, "metric_questions_per_class": METRIC_QUESTIONS_PER_CLASS},
    )
