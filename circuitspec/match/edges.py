"""Edge tests: does the source node's variable reach the target node through the claimed path?

An edge ``A -> B`` claims that A's variable reaches B's through paths that avoid every other
node's sites (unnamed sites on the way, such as a head that moves a value between positions,
belong to the edge). It is tested by path patching (``engine.paths``) on pairs that differ in
A's variable: A's sites patched from the source, the other nodes' sites held at their base
values, B's outputs recorded; then the base question with only B given those outputs. The
prediction is the causal model's path-specific one (``ArithmeticTask.path_answer``): A's new
value as seen by B's variables alone. It is compared on the answer tokens B serves, and
scored as a node is (``causal.judge``): informative pairs, accuracy with a Wilson interval,
a failing pair in the paper's notation. The base question is run on the predicted answer
(``Engine.answered``), as a node's test is.

Pairs: one set per variable of A that can change a variable of B, keeping what A's node
keeps. Where the change must climb the carry cascade (ST(1) -> SV(3)), every column between
is made a tie in both questions (``path_ties``), or almost no pair would inform.

An edge with ``route: answer`` claims less: A's variable reaches the answer tokens B serves
through B's sites or around them, still avoiding every other node that can lie between A and
B. It is the first step alone, run to the logits. It is meant for an edge into the node that
writes an answer digit (the last MLP, which the unembedding also reads around: the direct path
of a head's output to the logits); into a node with other nodes after it, their routes are
open too, so it says little.

Only the other nodes' sites that can lie between A's and B's (``site_can_feed`` from some
sender site and to some receiver site) are frozen: freezing any other site changes nothing,
and leaving it out keeps a test's result independent of unrelated nodes' placements, so the
solver's rounds (``matcher``) reuse it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import torch

from circuitspec.engine import Engine, Site
from circuitspec.engine.paths import PathPatch, path_patch
from circuitspec.match import candidates, causal
from circuitspec.match.placement import MIN_INFORMATIVE, Placement
from circuitspec.spec.instance import NodeInstance, site_can_feed

Edge = tuple[str, str]


@dataclass(frozen=True)
class EdgeResult:
    """The path-patching evidence for one edge on the chosen placements of its two nodes."""

    source: str
    target: str
    required: bool
    min_accuracy: float
    scores: tuple[causal.Score, ...]  # one per variable of the source that can change the target's
    sender: tuple[Site, ...] = ()
    receiver: tuple[Site, ...] = ()
    frozen: tuple[Site, ...] = ()
    untestable: str = ""  # why both ends are placed but no path between them can be patched (the edge fails)
    route: str = "target"  # "answer": through the receiver or around it, to the answer tokens it serves

    @property
    def tested(self) -> bool:
        return bool(self.sender and self.receiver)

    @property
    def passed(self) -> bool:
        return self.tested and bool(self.scores) and all(s.informative >= MIN_INFORMATIVE and s.accuracy[0] >= self.min_accuracy for s in self.scores)

    @property
    def plausible(self) -> bool:
        """Not passed, but the intervals cannot rule it out (as ``Placement.plausible``)."""
        return (
            self.tested
            and bool(self.scores)
            and not self.passed
            and all(s.accuracy[2] >= self.min_accuracy and (s.informative > 0 or s.drawn == 0) for s in self.scores)
        )

    @property
    def status(self) -> str:
        if self.untestable:
            return "failed"
        if not self.tested:
            return "untested"
        return "confirmed" if self.passed else "unconfirmed" if self.plausible else "failed"

    @property
    def weakest(self) -> causal.Score | None:
        return min(self.scores, key=lambda s: s.accuracy[0], default=None)


def _stage(site: Site) -> tuple[int, int, str]:
    return (site.position, site.layer, "head" if site.kind == "head" else "mlp")


def between(sender: Sequence[Site], receiver: Sequence[Site], others: Sequence[Site]) -> tuple[Site, ...]:
    """The sites of ``others`` that some sender site can feed and that can feed some receiver site."""
    return tuple(
        sorted(
            s
            for s in others
            if any(site_can_feed(_stage(a), _stage(s)) for a in sender) and any(site_can_feed(_stage(s), _stage(b)) for b in receiver)
        )
    )


class EdgeTester:
    """Tests edges of one expanded hypothesis on one model; pairs and results are cached across calls."""

    def __init__(self, graph: nx.DiGraph, engine: Engine, facts, *, seed: int = 0, known=None, pairs=None, paths=None) -> None:
        """``known(key, keep, n_pairs)``: the node tests' pairs for that variable, if drawn (None
        otherwise); an edge that needs no ties reuses them rather than drawing its own.
        ``pairs`` and ``paths``: stores of edge pairs and of path-patching answers, shared with
        other hypotheses on the same engine and seed (refinements of a spec repeat its edges)."""
        self.graph, self.engine, self.facts, self.seed = graph, engine, facts, seed
        self.known = known or (lambda key, keep, n_pairs: None)
        self.explains = graph.graph.get("explains", [])
        self._pairs: dict[tuple, causal.Pairs] = pairs if pairs is not None else {}
        self._paths: dict[tuple, torch.Tensor] = paths if paths is not None else {}
        self._results: dict[tuple, EdgeResult] = {}

    def _node(self, node_id: str) -> NodeInstance:
        return self.graph.nodes[node_id]["instance"]

    def senders(self, edge: Edge) -> list[tuple[tuple, list[tuple]]]:
        """Per variable of the source that can change the target's: (variable, the target's variables it reaches)."""
        task = self.engine.task
        out = []
        for key in self._node(edge[0]).variables:
            reached = [v for v in self._node(edge[1]).variables if task.reaches(key, v)]
            if reached:
                out.append((key, reached))
        return out

    def pairs(self, edge: Edge, key: tuple, reached: list[tuple]) -> tuple[tuple, causal.Pairs]:
        """Pairs for one variable of the edge's source, with the path-specific prediction, and
        their key in the pairs store."""
        task, src = self.engine.task, self._node(edge[0])
        gates = task.path_ties(key, reached[0])
        keep = tuple(sorted({k for k in src.keep if k != key} | set(gates)))
        n_pairs = self.graph.edges[edge]["n_pairs"]
        p = None if gates else self.known(key, keep, n_pairs)
        stored = ("edge", key, tuple(reached), keep, n_pairs, self.seed, tuple(self.explains), p is not None)
        if stored not in self._pairs:
            if p is None:
                cache_key = (key, tuple(reached), keep, n_pairs)
                seed = int.from_bytes(hashlib.sha256(repr((self.seed, "edge", cache_key)).encode()).digest()[:4], "little")
                p = causal.draw_tied(
                    self.engine, key, n_pairs=n_pairs, keep=keep, seed=seed, ties=[c for _, c in gates], explains=self.explains
                )
            predicted = task.path_answer(p.base, p.source, key, reached) if len(p.base) else p.predicted
            self._pairs[stored] = causal.Pairs(key, p.base, p.source, predicted, p.gold, p.dropped)
        return stored, self._pairs[stored]

    def test(self, chosen: Mapping[str, Placement], edges: Sequence[Edge]) -> dict[Edge, EdgeResult]:
        """Results for ``edges`` on the placements in ``chosen``; every new test runs in one batched engine call."""
        todo: dict[tuple, tuple[Edge, list]] = {}
        keys: dict[Edge, tuple] = {}
        for edge in edges:
            a, b = edge
            data = self.graph.edges[edge]
            if a not in chosen or b not in chosen:
                keys[edge] = ("untested", edge)
                self._results.setdefault(keys[edge], EdgeResult(a, b, data["required"], data["min_accuracy"], ()))
                continue
            sender = tuple(chosen[a].sites)
            # a site two spread nodes share is the edge's own, on the sender's side: the path ends past it
            receiver = tuple(s for s in chosen[b].sites if s not in sender)
            if not receiver:
                keys[edge] = ("untestable", edge)
                why = f"every site of {b} is also a site of {a}: no path between them to patch"
                self._results.setdefault(keys[edge], EdgeResult(a, b, data["required"], data["min_accuracy"], (), sender, untestable=why))
                continue
            ends = set(sender) | set(receiver)
            others = [s for n, p in chosen.items() if n not in edge for s in p.sites if s not in ends]
            frozen = between(sender, receiver, others)
            key = (edge, sender, receiver, frozen, data.get("route", "target"))
            keys[edge] = key
            if key not in self._results and key not in todo:
                todo[key] = (edge, [(k, self.pairs(edge, k, r)) for k, r in self.senders(edge)])
        self._run(todo)
        return {edge: self._results[keys[edge]] for edge in edges}

    def _run(self, todo: Mapping[tuple, tuple[Edge, list]]) -> None:
        """Path-patch what no hypothesis on this engine has patched yet (one batched call), then score."""
        patches, owners = [], []
        for key, (edge, per_var) in todo.items():
            _, sender, receiver, frozen, route = key
            for var, (stored, p) in per_var:
                ran = (stored, sender, receiver, frozen, route)
                if len(p.base) and ran not in self._paths and ran not in owners:
                    base = self.engine.answered(p.base, p.predicted)  # the path's answer read back, as in causal.score
                    patches.append(PathPatch(sender, receiver, frozen, base, p.source, label=f"{edge[0]}->{edge[1]} {var}", route=route))
                    owners.append(ran)
        out = path_patch(self.engine, patches)
        self._paths.update((ran, out.pred[i].cpu()) for i, ran in enumerate(owners))
        eng = self.engine
        for key, (edge, per_var) in todo.items():
            _, sender, receiver, frozen, route = key
            served = candidates.served(receiver, self.facts, eng)
            scores = []
            for var, (stored, p) in per_var:
                if len(p.base):
                    scores.append(causal.judge(eng, p, self._paths[(stored, sender, receiver, frozen, route)], served))
                else:
                    scores.append(causal.Score(p.key, 0, 0, 0, None, drawn=0))
            data = self.graph.edges[edge]
            self._results[key] = EdgeResult(
                edge[0], edge[1], data["required"], data["min_accuracy"], tuple(scores), sender, receiver, frozen, route=route
            )
