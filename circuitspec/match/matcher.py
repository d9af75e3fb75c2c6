"""The matcher: place every hypothesis node on sites, prove it, respect the edges.

For each node: enumerate the sites its kind, positions and layers allow; drop those
whose measured facts break its behaviour constraints; score the rest by interchange
tests on every variable the node computes (single sites, co-located head sets up to
``max_heads`` that beat their passing subsets, then ranked neuron sets); keep the
realisations that pass.
The solver then picks one passing realisation per node so that every edge is real
information flow and no site serves two nodes.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import networkx as nx

from circuitspec.engine import Engine, Site
from circuitspec.match import candidates, causal, neurons
from circuitspec.match.solver import Assignment, Option, solve
from circuitspec.spec.expand import NodeInstance, site_can_feed

MIN_INFORMATIVE = 20  # fewer informative pairs than this cannot confirm a node


@dataclass(frozen=True)
class Evaluated:
    """One realisation of a node with its interchange scores, one per variable."""

    sites: tuple[Site, ...]
    scores: tuple[causal.Score, ...]
    min_accuracy: float

    @property
    def value(self) -> float:
        """The weakest variable's accuracy: every variable must hold."""
        return min((s.accuracy[0] for s in self.scores), default=0.0)

    @property
    def gain(self) -> float:
        """The weakest variable's log-prob gain towards the predicted answers."""
        return min((s.gain for s in self.scores), default=0.0)

    @property
    def passed(self) -> bool:
        return all(s.informative >= MIN_INFORMATIVE and s.accuracy[0] >= self.min_accuracy for s in self.scores)

    @property
    def plausible(self) -> bool:
        """Not passed, but the intervals cannot rule it out (too few pairs or a borderline score).

        A realisation that no pair informs about (the variable never changes an answer
        token it serves) is ruled out when pairs were drawn: it does not carry the variable.
        """
        return not self.passed and all(
            s.accuracy[2] >= self.min_accuracy and (s.informative > 0 or s.drawn == 0) for s in self.scores
        )


@dataclass
class NodeResult:
    node: NodeInstance
    allowed: int  # sites the node's kind, positions and layers allow
    considered: int  # realisations that also met the behaviour constraints and were tested
    evaluated: list[Evaluated] = field(default_factory=list)  # best first

    @property
    def passing(self) -> list[Evaluated]:
        return [e for e in self.evaluated if e.passed]


@dataclass
class Match:
    nodes: dict[str, NodeResult]
    assignment: Assignment
    graph: nx.DiGraph
    scope: list[bool]  # per answer token: can some node's variable change it (in the causal model)?

    def sites(self, node_id: str) -> tuple[Site, ...]:
        option = self.assignment.chosen.get(node_id)
        return tuple(option.sites) if option else ()

    @property
    def circuit(self) -> list[Site]:
        return sorted({s for o in self.assignment.chosen.values() for s in o.sites})


def match(graph: nx.DiGraph, engine: Engine, facts, *, seed: int = 0) -> Match:
    """Place the nodes of an expanded hypothesis ``graph`` in ``engine``'s model."""
    pair_cache: dict[tuple, causal.Pairs] = {}
    explains = graph.graph.get("explains", [])

    def pairs(key, node: NodeInstance) -> causal.Pairs:
        keep = tuple(sorted(k for k in node.keep if k != key))
        cache_key = (key, keep, node.n_pairs)
        if cache_key not in pair_cache:
            pair_cache[cache_key] = causal.draw_pairs(
                engine, key, n_pairs=node.n_pairs, keep=keep, seed=_seed(seed, key, keep), explains=explains
            )
        return pair_cache[cache_key]

    results: dict[str, NodeResult] = {}
    for node_id in sorted(graph.nodes):
        node: NodeInstance = graph.nodes[node_id]["instance"]
        results[node_id] = _place(node, engine, facts, pairs)

    options = {
        nid: [Option(tuple(e.sites), round(e.value, 9)) for e in r.passing] for nid, r in results.items()
    }
    required = [nid for nid, r in results.items() if r.node.required]
    assignment = solve(options, [(u, v) for u, v in graph.edges], _feeds, required=required)
    scope = [False] * engine.task.n_answer
    for p in pair_cache.values():
        changes = (p.predicted != p.gold).any(dim=0).tolist()
        scope = [a or b for a, b in zip(scope, changes)]
    return Match(nodes=results, assignment=assignment, graph=graph, scope=scope)


def _place(node: NodeInstance, engine: Engine, facts, pairs) -> NodeResult:
    allowed = candidates.allowed_sites(node, engine.shape)
    sites = candidates.filter_by_facts(node, allowed, facts)
    result = NodeResult(node=node, allowed=len(allowed), considered=0)
    if not sites:
        return result
    pair_sets = [pairs(key, node) for key in node.variables]

    def evaluate(realisations: Sequence[tuple[Site, ...]]) -> list[Evaluated]:
        if not realisations:
            return []
        served = [candidates.served(r, facts, engine.answer_positions, engine.answer_labels) for r in realisations]
        per_variable = [causal.score(engine, p, realisations, served) for p in pair_sets]
        result.considered += len(realisations)
        return [
            Evaluated(sites=r, scores=tuple(v[i] for v in per_variable), min_accuracy=node.min_accuracy)
            for i, r in enumerate(realisations)
        ]

    evaluated: list[Evaluated] = []
    if node.site != "neurons":  # a neurons node is realised by a neuron set, never a whole MLP
        evaluated += evaluate([(s,) for s in sites])
        evaluated += _needed(evaluate(_colocated_sets(sites, node.max_heads)), evaluated)
    if node.site == "neurons" or (node.site == "any" and not any(e.passed for e in evaluated)):
        evaluated += neurons.search(sites, engine, pair_sets, evaluate)
    result.evaluated = sorted(evaluated, key=lambda e: (not e.passed, -e.value, [str(s) for s in e.sites]))
    return result


def _needed(sets: Sequence[Evaluated], smaller: Sequence[Evaluated]) -> list[Evaluated]:
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


def _low(e: Evaluated) -> float:
    return min(s.accuracy[1] for s in e.scores)


def _high(e: Evaluated) -> float:
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


def _feeds(src: Option, dst: Option) -> bool:
    """Every site of the source can feed every site of the target."""
    return all(
        site_can_feed((a.position, a.layer, _stage_kind(a)), (b.position, b.layer, _stage_kind(b)))
        for a in src.sites
        for b in dst.sites
    )


def _stage_kind(site: Site) -> str:
    return "head" if site.kind == "head" else "mlp"


def _seed(seed: int, key, keep) -> int:
    digest = hashlib.sha256(repr((seed, key, keep)).encode()).digest()
    return int.from_bytes(digest[:4], "little")
