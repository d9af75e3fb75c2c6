"""``suggest``: a hypothesis proposed from a model's labels, every node and edge confirmed on the model.

1. The model's labels (``verify.labels``: from the cache when they are there, never relabelled).
   The proposal claims the classes the labels' pairs came from (``explains``: those the model
   answers, when it fails some).
2. Every labelled site (a head, an MLP, a co-located head set) is a candidate node computing its
   label(s), at its position and layer, on its kind of site; sites that compute the same
   variables at the same offset from their column become one ``for_each`` template
   (``spec.generalise``).
3. Candidate edges: every ordered pair of candidate nodes whose sites can carry information
   (``spec.instance.site_can_feed``) and whose variables the causal model connects
   (``TaskVocabulary.reaches``), as ``expand`` would accept them.
4. The whole candidate hypothesis is verified on the model (``verify.core``, the one core): a
   node is kept where it is confirmed, an edge where path patching confirms it. A node that fails
   on some of its variables only (on its own site) is tried again without them: the labeller's
   pairs and the matcher's differ, and a variable that just passed one can fail the other; the
   rest of the site's labels still hold (at most ``MAX_ROUNDS`` candidates). What is left is
   written, with the evidence as comments (``spec.writer``), and checked to load.

With ``from_spec``, the user's hypothesis is verified first; the labelled sites its confirmed
nodes occupy are taken as explained, and only the nodes and edges it lacks are proposed, as a
unified diff against the user's file (``spec.patch``), which is never written.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from circuitspec.engine import Engine, Site
from circuitspec.match.label import Labels, SiteLabel
from circuitspec.match.placement import MIN_INFORMATIVE
from circuitspec.spec import Hypothesis, expand, load, loads, site_can_feed
from circuitspec.spec.generalise import Finding, Pattern, drafts, name_patterns, parse_key, patterns, range_text
from circuitspec.spec.loader import to_data
from circuitspec.spec.patch import unified_patch
from circuitspec.spec.writer import EdgeDraft, document
from circuitspec.tasks.registry import vocabulary
from circuitspec.vocabulary import key_text
from circuitspec.verify.core import verify_model
from circuitspec.verify.labels import load_or_label
from circuitspec.verify.verdict import Verdict

MIN_FAITHFULNESS = 0.9  # the bar the specs in specs/ set; a proposal claims the same
MAX_ROUNDS = 3  # candidate hypotheses verified: the first, then after failing variables are removed
_SIMPLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*?)\{(\w+)\}")


@dataclass
class Suggestion:
    """What ``suggest`` proposes: ``text`` (a spec, or with ``from_spec`` a unified diff) and why."""

    text: str
    model: str
    nodes: list[str]  # expanded ids of the proposed nodes
    edges: list[tuple[str, str]]
    dropped: dict[str, str] = field(default_factory=dict)  # candidate node -> why it was not proposed
    unexplained: list[str] = field(default_factory=list)  # useful sites no label explains
    verdict: Verdict | None = None  # the candidate hypothesis's verdict
    labels_from_cache: bool = False


def evidence_text(s: SiteLabel) -> str:
    scores = "; ".join(f"{v.name} {v.accuracy:.2f} [{v.low:.2f}, {v.high:.2f}] on {v.pairs} pairs" for v in s.variables)
    return f"{scores}; serves {' '.join(s.serves)}"


def findings(labels: Labels, explained: set[str]) -> list[Finding]:
    """The labelled sites none of whose sites is in ``explained``, as findings."""
    out = []
    for s in labels.sites:
        if s.status != "labelled" or set(s.sites) & explained:
            continue
        names = tuple(tuple(parse_key(t) for t in [v.variable, *v.same_as]) for v in s.variables)
        kind = "mlp" if s.kind == "mlp" else "head"
        keep = tuple(dict.fromkeys(parse_key(t) for v in s.variables for t in v.held))
        out.append(Finding(s.site, kind, len(s.sites), s.layer, s.position, names, evidence_text(s), keep))
    return out


def _stage(site: Site) -> tuple[int, int, str]:
    return (site.position, site.layer, "head" if site.kind == "head" else "mlp")


def candidate_edges(graph, sites: dict[str, list[Site]], new: set[str], known: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Ordered pairs (one end in ``new``, not in ``known``) whose sites can feed and whose variables connect."""
    shape = graph.graph["shape"]
    voc = vocabulary(shape.op)
    out = []
    for a, b in itertools.permutations(sorted(sites), 2):
        if (a not in new and b not in new) or (a, b) in known:
            continue
        if not all(site_can_feed(_stage(x), _stage(y)) for x in sites[a] for y in sites[b]):
            continue
        va, vb = graph.nodes[a]["instance"].variables, graph.nodes[b]["instance"].variables
        if any(voc.reaches(u, v, shape.digits) for u in va for v in vb):
            out.append((a, b))
    return out


def _columns(graph, patterns_: list[Pattern]) -> dict[str, tuple[str, int | None]]:
    """Expanded id -> (id prefix, column) for proposed nodes and for the user's ``PREFIX{n}`` templates."""
    out: dict[str, tuple[str, int | None]] = {}
    for nid in graph.nodes:
        inst = graph.nodes[nid]["instance"]
        m = _SIMPLE.fullmatch(inst.template)
        if m and list(inst.bindings) == [m[2]]:
            out[nid] = (m[1], inst.bindings[m[2]])
    for p in patterns_:
        for n in p.members:
            out[p.node_id(n)] = (p.prefix, n)
    return out


def edge_drafts(edges: list[tuple[str, str]], columns: dict, digits: int, evidence: dict[tuple[str, str], str]) -> list[EdgeDraft]:
    """Confirmed edges, templated where a run of two or more columns has the same shape (``ST{n} -> A{n+1}``)."""
    groups: dict[tuple, list[int]] = {}
    single = []
    for a, b in edges:
        (pa, na), (pb, nb) = columns.get(a, (a, None)), columns.get(b, (b, None))
        if na is None or nb is None:
            single.append((a, b))
        else:
            groups.setdefault((pa, pb, nb - na), []).append(na)
    out = []
    for (pa, pb, d), cols in groups.items():
        cols = sorted(cols)
        runs: list[list[int]] = []
        for n in cols:
            if runs and n == runs[-1][-1] + 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        for run in runs:
            pairs = [(f"{pa}{n}", f"{pb}{n + d}") for n in run]
            notes = tuple(evidence[e] for e in pairs)
            if len(run) == 1:
                single_flow = f"{pairs[0][0]} -> {pairs[0][1]}"
                out.append(EdgeDraft(single_flow, evidence=notes))
            else:
                ref = "n" if d == 0 else f"n{d:+d}"
                out.append(EdgeDraft(f"{pa}{{n}} -> {pb}{{{ref}}}", for_each=range_text(run[0], run[-1], digits), evidence=notes))
    out += [EdgeDraft(f"{a} -> {b}", evidence=(evidence[(a, b)],)) for a, b in single]
    return sorted(out, key=lambda e: e.flow)


def suggest(
    model: Any,
    *,
    from_spec: str | os.PathLike | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress=None,
) -> Suggestion:
    """Propose a hypothesis for ``model`` (a ``Model`` or a name / path ``models.load`` takes); see
    the module docstring. With ``from_spec``, only what that spec lacks, as a unified diff."""
    from circuitspec.models import load as load_model

    base = load(from_spec) if from_spec is not None else None  # a bad spec fails before any model work
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    labelled = load_or_label(Engine(model, seed=seed), cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    labels = labelled.labels
    card = model.card
    placed = _held(base, model, seed, cache_dir) if base is not None else {}
    explained = {str(s) for sites in placed.values() for s in sites}
    base_graph = expand(base, card) if base is not None else None
    found = findings(labels, explained)
    if base is None and not found:
        from circuitspec.errors import VerifyError

        raise VerifyError(f"no labelled site in {model.name} to propose a node for", hint=f"circuitspec label {model.name} shows why each useful site is unexplained")
    data = to_data(base) if base is not None else _fresh(model, labels.explains)
    name, task = data.pop("name"), data.pop("task")
    for _ in range(MAX_ROUNDS):
        t = _trial(found, data, name, task, model, base_graph, placed, seed, cache_dir)
        shrunk = _shrink(found, t)
        if shrunk == found:
            break
        found = shrunk
    pats, graph, edges, verdict, new = t.patterns, t.graph, t.edges, t.verdict, t.new
    status = {n.node: n for n in verdict.nodes}
    dropped = {nid: status[nid].detail or status[nid].status for nid in sorted(new) if status[nid].status != "confirmed"}
    for p in pats:
        p.members = {n: f for n, f in p.members.items() if p.node_id(n) not in dropped}
    pats = [p for p in pats if p.members]
    kept_edges = sorted((e.source, e.target) for e in verdict.edge_results if (e.source, e.target) in set(edges) and e.status == "confirmed")
    evidence = {(e.source, e.target): e.detail for e in verdict.edge_results}
    layout = model.task.layout
    nodes = [d for p in pats for d in drafts(p, layout)]
    edge_items = edge_drafts(kept_edges, _columns(graph, pats), layout.digits, evidence)
    unexplained = [f"{s.site} ({s.text})" for s in labels.sites if s.status == "unexplained" and s.site not in explained]
    notes = _notes(dropped, unexplained)
    if base is None:
        text = document(
            header=_header(model.name, verdict), name=f"suggested_{model.name}", description=f"proposed by circuitspec suggest from the labels of {model.name}",
            task=card.task.op, applies_to=_applies(card), explains=labels.explains, nodes=nodes, edges=edge_items,
            checks={"min_faithfulness": MIN_FAITHFULNESS}, footer=notes,
        )
        loads(text, file=f"suggested_{model.name}.yaml")  # what is written loads with the project's own loader
    else:
        text = unified_patch(Path(from_spec), nodes, edge_items, notes=[f"proposed by circuitspec suggest {model.name}: what {base.name} lacks", *notes])
    return Suggestion(
        text=text, model=model.name, nodes=[nid for d in nodes for nid, _ in d.members], edges=kept_edges, dropped=dropped,
        unexplained=unexplained, verdict=verdict, labels_from_cache=labelled.from_cache,
    )


@dataclass
class _Trial:
    """One candidate hypothesis (every finding a node, every plausible edge optional) and its verdict."""

    patterns: list[Pattern]
    graph: Any
    edges: list[tuple[str, str]]
    new: set[str]
    verdict: Verdict


def _trial(found: list[Finding], data: dict, name: str, task: str, model, base_graph, placed: dict, seed: int, cache_dir) -> _Trial:
    """The findings as nodes (beside ``data``'s own), the edges that could join them, verified on the model."""
    card = model.card
    pats = patterns(found, model.task.layout)
    name_patterns(pats, taken=set(base_graph.nodes) if base_graph is not None else set())
    candidates = [d for p in pats for d in drafts(p, model.task.layout)]
    data = {**data, "nodes": [*data.get("nodes", []), *(d.data() for d in candidates)]}
    graph = expand(Hypothesis.build(name, task=task, **data), card)
    new = {nid for d in candidates for nid, _ in d.members}
    sites = {**placed, **{nid: [Site.parse(x) for x in _site_list(site)] for d in candidates for nid, site in d.members}}
    known = set(base_graph.edges) if base_graph is not None else set()
    edges = candidate_edges(graph, sites, new, known)
    data["edges"] = [*data.get("edges", []), *(EdgeDraft(f"{a} -> {b}", optional=True).data() for a, b in edges)]
    verdict = verify_model([Hypothesis.build(name, task=task, **data)], model, seed=seed, cache_dir=cache_dir)[0]
    return _Trial(pats, graph, edges, new, verdict)


def _shrink(found: list[Finding], t: _Trial) -> list[Finding]:
    """The findings with the variables their node failed on its own site removed (a site labelled
    SA(4), SS(3) and ST(2) whose ST(2) fails the matcher's pairs is proposed for SA(4) and SS(3)),
    and without those that keep none; unchanged where every node was confirmed."""
    status = {n.node: n for n in t.verdict.nodes}
    out = []
    for f in found:
        p = next(p for p in t.patterns if f in p.members.values())
        nid = p.node_id(next(n for n, g in p.members.items() if g == f))
        nv, bar = status[nid], t.graph.nodes[nid]["instance"].min_accuracy
        if nv.status == "confirmed":
            out.append(f)
            continue
        tests = nv.tests if nv.sites == _site_list(f.site) else nv.runner_up.tests if nv.runner_up and nv.runner_up.sites == _site_list(f.site) else []
        passed = {v.variable for v in tests if v.pairs >= MIN_INFORMATIVE and v.accuracy.value >= bar}
        keep = [i for i, names in enumerate(f.variables) if {key_text(k) for k in names} & passed]
        if keep and len(keep) < len(f.variables):
            failed = [v for v in tests if v.variable not in passed]
            why = "; ".join(f"{v.variable} left out: {v.accuracy.value:.2f} [{v.accuracy.low:.2f}, {v.accuracy.high:.2f}] on {v.pairs} pairs as a node" for v in failed)
            out.append(replace(f, variables=tuple(f.variables[i] for i in keep), evidence=f"{f.evidence}; {why}"))
    return out


def _held(base: Hypothesis, model, seed: int, cache_dir) -> dict[str, list[Site]]:
    """The sites of each node of ``base`` that verify confirms on ``model``."""
    verdict = verify_model([base], model, seed=seed, cache_dir=cache_dir)[0]
    if verdict.status == "not_applicable":
        from circuitspec.errors import VerifyError

        raise VerifyError(f"{base.name} does not apply to {model.name}: {verdict.summary}", hint="suggest --from needs a spec that applies to the model")
    return {n.node: [Site.parse(s) for s in n.sites] for n in verdict.nodes if n.status == "confirmed"}


def _site_list(site: str) -> list[str]:
    """``P16.L0.H1+H2`` -> ``['P16.L0.H1', 'P16.L0.H2']``."""
    head, _, rest = site.partition("+")
    if not rest:
        return [site]
    prefix = head.rsplit(".", 1)[0]
    return [head] + [f"{prefix}.{h}" for h in rest.split("+")]


def _fresh(model, explains: list[str]) -> dict:
    out = {"name": f"suggested_{model.name}", "task": model.card.task.op, "applies_to": _applies(model.card)}
    return {**out, "explains": explains} if explains else out


def _applies(card) -> dict[str, str | int]:
    arch = card.architecture
    return {"digits": card.task.digits, "layers": arch.n_layers, "heads": f"{arch.n_heads}.."}


def _header(name: str, verdict: Verdict) -> list[str]:
    f = verdict.metrics.faithfulness
    faith = f"{f.value:.2f} [{f.low:.2f}, {f.high:.2f}]" if f is not None else "not measured"
    return [
        f"Proposed by `circuitspec suggest {name}` from the model's labels (`circuitspec label {name}`).",
        "Each node is a labelled site: the variables it computes, at its position and layer, on its kind of site;",
        "sites that compute the same variables at the same offset from their column share one for_each template.",
        "Every node was confirmed by its interchange test on the model, every edge by path patching.",
        f"Faithfulness of the candidate circuit when suggested: {faith} (threshold below: {MIN_FAITHFULNESS}).",
        "Edit freely: widen applies_to after verifying on other models, add attends / impacts constraints.",
    ]


def _notes(dropped: dict[str, str], unexplained: list[str]) -> list[str]:
    out = []
    if dropped:
        out.append("Labelled, but not confirmed as a node (not proposed):")
        out += [f"  {nid}: {why}" for nid, why in dropped.items()]
    if unexplained:
        out.append("Useful, but no variable explains it (not proposed):")
        out += [f"  {s}" for s in unexplained]
    return out
