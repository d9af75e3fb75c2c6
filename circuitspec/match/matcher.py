"""The matcher: place every hypothesis node on sites, prove it, respect the edges.

For each node: enumerate the sites its kind, positions and layers allow; drop those
whose measured facts break its behaviour constraints; score the rest by interchange
tests on every variable the node computes (single sites, co-located head sets up to
``max_heads`` that beat their passing subsets, then ranked neuron sets; a ``spread``
node has one placement, every site that fits); keep the placements that pass.
The solver then picks one passing placement per node so that every edge is real
information flow and no site serves two nodes, and the required edges of its choice must pass
their path-patching tests (``match.edges``); placement pairs that fail one are struck out and
the solver runs again.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from circuitspec.engine import Engine, Site
from circuitspec.match import candidates, causal, neurons
from circuitspec.match.edges import EdgeResult, EdgeTester
from circuitspec.match.placement import Placement
from circuitspec.match.solver import Assignment, solve
from circuitspec.spec.instance import NodeInstance, site_can_feed

MAX_EDGE_ROUNDS = 6  # solver rounds that strike out placement pairs failing a required edge


@dataclass
class NodeResult:
    node: NodeInstance
    allowed: int  # sites the node's kind, positions and layers allow
    considered: int  # placements that also met the behaviour constraints and were tested
    evaluated: list[Placement] = field(default_factory=list)  # every placement tried, best first

    @property
    def passing(self) -> list[Placement]:
        return [e for e in self.evaluated if e.passed]


@dataclass
class Match:
    nodes: dict[str, NodeResult]
    assignment: Assignment
    graph: nx.DiGraph
    scope: list[bool]  # per answer token: can some node's variable change it (in the causal model)?
    edges: dict[tuple[str, str], EdgeResult] = field(default_factory=dict)  # path-patching result of every edge

    def sites(self, node_id: str) -> tuple[Site, ...]:
        placement = self.assignment.chosen.get(node_id)
        return tuple(placement.sites) if placement else ()

    @property
    def circuit(self) -> list[Site]:
        return sorted({s for o in self.assignment.chosen.values() for s in o.sites})


@dataclass
class Memo:
    """Counterfactual pairs, placement scores and edge path-patching answers of one model, shared by
    the hypotheses matched on it.

    Hypotheses about one model repeat nodes (the refinements of a spec keep most of its
    nodes; every addition spec tests SA(n) on the same heads): the same variable, pairs and
    candidate placements give the same scores, so they are drawn and scored once. A score is
    reused only for the same placements in the same batch, so it is the same bits a fresh run
    would give. An edge's path-patching answers are reused for the same pairs and sites (sender,
    receiver, frozen, route): a row's answer does not depend on the other rows of its batch
    (``engine.paths``). Valid for one engine, facts and seed."""

    pairs: dict[tuple, causal.Pairs] = field(default_factory=dict)
    scores: dict[tuple, list[causal.Score]] = field(default_factory=dict)
    paths: dict[tuple, Any] = field(default_factory=dict)  # path-patching answers of edge tests
    reused: int = 0  # score requests answered from ``scores``


def match(graph: nx.DiGraph, engine: Engine, facts, *, seed: int = 0, memo: Memo | None = None) -> Match:
    """Place the nodes of an expanded hypothesis ``graph`` in ``engine``'s model (``memo``: what
    earlier hypotheses on the same engine, facts and seed measured)."""
    memo = memo if memo is not None else Memo()
    pair_cache: dict[tuple, causal.Pairs] = {}  # the pairs this hypothesis uses
    explains = graph.graph.get("explains", [])

    def shared_key(key, node: NodeInstance) -> tuple:
        """What a variable's pairs depend on: the memo's key for them."""
        return (key, tuple(sorted(k for k in node.keep if k != key)), node.n_pairs, seed, tuple(explains))

    def pairs(key, node: NodeInstance) -> causal.Pairs:
        shared = shared_key(key, node)
        _, keep, n_pairs = shared[:3]
        if shared not in memo.pairs:
            memo.pairs[shared] = causal.draw_pairs(engine, key, n_pairs=n_pairs, keep=keep, seed=_seed(seed, key, keep), explains=explains)
        pair_cache[(key, keep, n_pairs)] = memo.pairs[shared]
        return memo.pairs[shared]

    def score(key, node: NodeInstance, placements: Sequence[tuple[Site, ...]], served: list[set[str]]) -> list[causal.Score]:
        stored = (shared_key(key, node), tuple(placements), tuple(frozenset(s) for s in served))
        if stored in memo.scores:
            memo.reused += 1
        else:
            memo.scores[stored] = causal.score(engine, pairs(key, node), placements, served)
        return memo.scores[stored]

    results: dict[str, NodeResult] = {}
    for node_id in sorted(graph.nodes):
        node: NodeInstance = graph.nodes[node_id]["instance"]
        results[node_id] = _place(node, engine, facts, pairs, score)

    options = {nid: r.passing for nid, r in results.items()}
    required = [nid for nid, r in results.items() if r.node.required]
    tester = EdgeTester(graph, engine, facts, seed=seed, known=lambda key, keep, n: pair_cache.get((key, keep, n)), pairs=memo.pairs, paths=memo.paths)
    assignment, edge_results = _solve_with_edges(graph, tester, options, required)
    scope = [False] * engine.task.n_answer
    for p in pair_cache.values():
        changes = (p.predicted != p.gold).any(dim=0).tolist()
        scope = [a or b for a, b in zip(scope, changes)]
    return Match(nodes=results, assignment=assignment, graph=graph, scope=scope, edges=edge_results)


def _solve_with_edges(graph: nx.DiGraph, tester: EdgeTester, options, required):
    """The best assignment whose required edges pass their path-patching tests, and every edge's result.

    Structural feasibility (``_feeds``) is the solver's cheap filter; the edges of each
    assignment it returns are then path-patched, and a (source, target) placement pair that
    fails a required edge is struck out before solving again, up to ``MAX_EDGE_ROUNDS`` times.
    Striking out never costs a node its place: when the next assignment places fewer nodes
    (the failing pair had no alternative), the previous one stands with its failed edges, which
    fail the hypothesis while every node keeps the evidence of its own test (and faithfulness
    is measured on the circuit the nodes make).
    """
    edges = [(u, v) for u, v in graph.edges]
    needed = [(u, v) for u, v, d in graph.edges(data=True) if d["required"]]
    banned: set[tuple[Placement, Placement]] = set()

    def compatible(src: Placement, dst: Placement) -> bool:
        return _feeds(src, dst) and (src, dst) not in banned

    previous: Assignment | None = None
    for _ in range(MAX_EDGE_ROUNDS):
        assignment = solve(options, edges, compatible, required=required)
        if previous is not None and _placed(assignment, required) < _placed(previous, required):
            assignment = previous
            break
        tested = tester.test(assignment.chosen, needed)
        failing = [e for e, r in tested.items() if r.status == "failed"]
        if not failing:
            break
        banned.update((assignment.chosen[u], assignment.chosen[v]) for u, v in failing)
        previous = assignment
    return assignment, tester.test(assignment.chosen, edges)


def _placed(assignment: Assignment, required) -> tuple[int, int]:
    return sum(n in assignment.chosen for n in required), len(assignment.chosen)


def _place(node: NodeInstance, engine: Engine, facts, pairs, score) -> NodeResult:
    allowed = candidates.allowed_sites(node, engine.shape)
    sites = candidates.filter_by_facts(node, allowed, facts)
    result = NodeResult(node=node, allowed=len(allowed), considered=0)
    if not sites:
        return result
    pair_sets = [pairs(key, node) for key in node.variables]

    def evaluate(placements: Sequence[tuple[Site, ...]]) -> list[Placement]:
        if not placements:
            return []
        served = [candidates.served(r, facts, engine) for r in placements]
        if node.test_answers is not None:  # the spec compares only these of the tokens served
            served = [s & set(node.test_answers) for s in served]
        per_variable = [score(key, node, placements, served) for key in node.variables]
        result.considered += len(placements)
        return [
            Placement(sites=r, scores=tuple(v[i] for v in per_variable), min_accuracy=node.min_accuracy)
            for i, r in enumerate(placements)
        ]

    evaluated: list[Placement] = []
    if node.spread:  # one placement: every site that fits, patched together
        result.evaluated = [replace(p, shareable=True) for p in evaluate([tuple(sites)])]
        return result
    if node.site != "neurons":  # a neurons node is placed by a neuron set, never a whole MLP
        evaluated += evaluate([(s,) for s in sites])
        evaluated += _needed(evaluate(_colocated_sets(sites, node.max_heads)), evaluated)
    if node.site == "neurons" or (node.site == "any" and not any(e.passed for e in evaluated)):
        evaluated += neurons.search(sites, engine, pair_sets, evaluate)
    result.evaluated = sorted(evaluated, key=lambda e: (not e.passed, -e.value, [str(s) for s in e.sites]))
    return result


def _needed(sets: Sequence[Placement], smaller: Sequence[Placement]) -> list[Placement]:
    """Head sets that do better than every passing subset of them, beyond both intervals.

    A set is kept when no subset passes, or when its weakest variable's accuracy interval
    lies wholly above each passing subset's: an extra head must add evidence, not ride along.
    """
    passing = {frozenset(e.sites): e for e in smaller if e.passed}
    out = []
    for e in sets:
        subsets = [p for key, p in passing.items() if key < frozenset(e.sites)]
        if all(_low(e) > _high(p) for p in subsets):
            out.append(e)
            if e.passed:
                passing[frozenset(e.sites)] = e
    return out


def _low(e: Placement) -> float:
    return min(s.accuracy[1] for s in e.scores)


def _high(e: Placement) -> float:
    return min(s.accuracy[2] for s in e.scores)


def _colocated_sets(sites: Sequence[Site], max_heads: int) -> list[tuple[Site, ...]]:
    """Sets of 2..max_heads heads sharing a layer and position (the paper's split SA)."""
    groups: dict[tuple[int, int], list[Site]] = {}
    for s in sites:
        if s.kind == "head":
            groups.setdefault((s.layer, s.position), []).append(s)
    out = []
    for key in sorted(groups):
        heads = sorted(groups[key])
        for k in range(2, min(max_heads, len(heads)) + 1):
            out.extend(itertools.combinations(heads, k))
    return out


def _feeds(src: Placement, dst: Placement) -> bool:
    """Some site of the source can feed some site of the target.

    For a single site or co-located heads this is the same as every site feeding every site;
    a spread placement spans tokens, and one route suffices (the path test says whether it is real).
    """
    return any(
        site_can_feed((a.position, a.layer, _stage_kind(a)), (b.position, b.layer, _stage_kind(b)))
        for a in src.sites
        for b in dst.sites
    )


def _stage_kind(site: Site) -> str:
    return "head" if site.kind == "head" else "mlp"


def _seed(seed: int, key, keep) -> int:
    digest = hashlib.sha256(repr((seed, key, keep)).encode()).digest()
    return int.from_bytes(digest[:4], "little")
