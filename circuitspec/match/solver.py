"""The assignment solver: one placement per node, all edges respected, most evidence.

A branch-and-bound search over the nodes' confirmed placements (anything with ``sites`` and a
``score``: ``circuitspec.match.placement.Placement``; the tests use small stand-ins). Placing a node always
beats leaving it out (lexicographic objective: required nodes placed, then nodes
placed, then total score), no site serves two nodes (except between two placements that are
both ``shareable``: spread nodes, each every site that takes part in its variable), and every
hypothesis edge must be realisable as information flow between the chosen sites.

Each choice is propagated at once (forward checking): the placements of the other nodes
that now share a site or break an edge are struck out, the most constrained node is
decided next, and the bound counts only placements that are still possible. That keeps
the search exact and small on hypotheses with dozens of nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Placement(Protocol):
    """What the solver reads of a placement: its sites (no site serves two nodes) and its score.

    A placement with a true ``shareable`` attribute may share sites with another such placement."""

    @property
    def sites(self) -> tuple[Hashable, ...]: ...

    @property
    def score(self) -> float: ...


@dataclass
class Assignment:
    chosen: dict[str, Placement] = field(default_factory=dict)
    # nodes with passing placements that no consistent assignment could place
    conflicted: list[str] = field(default_factory=list)
    explored: int = 0
    exhaustive: bool = True


Value = tuple[int, int, float]


def solve(
    placements: Mapping[str, Sequence[Placement]],
    edges: Sequence[tuple[str, str]],
    compatible: Callable[[Placement, Placement], bool],
    *,
    required: Sequence[str] = (),
    max_steps: int = 200_000,
) -> Assignment:
    """Best assignment of placements to nodes (one function: its closures share the search state).

    ``compatible(src, dst)`` says whether information can flow from the sites of
    ``src`` to those of ``dst``. The search is exact unless it needs more than
    ``max_steps`` expansions, in which case the best assignment found so far is
    returned with ``exhaustive=False``.
    """
    required_set = set(required)
    nodes = sorted(placements)
    start = {n: tuple(sorted(placements[n], key=lambda o: (-o.score, tuple(map(str, o.sites))))) for n in nodes}
    out_edges: dict[str, list[str]] = {n: [] for n in nodes}
    in_edges: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        if src in start and dst in start and src != dst:
            out_edges[src].append(dst)
            in_edges[dst].append(src)

    def weight(node: str, placement: Placement) -> Value:
        return (int(node in required_set), 1, placement.score)

    def bound(domains: Mapping[str, tuple[Placement, ...]]) -> Value:
        r = c = 0
        s = 0.0
        for node, dom in domains.items():
            if dom:
                r += node in required_set
                c += 1
                s += dom[0].score  # domains stay sorted best first
        return r, c, s

    def propagate(domains: dict[str, tuple[Placement, ...]], node: str, placement: Placement) -> dict[str, tuple[Placement, ...]]:
        sites = set(placement.sites)
        shareable = getattr(placement, "shareable", False)
        succ, pred = set(out_edges[node]), set(in_edges[node])
        out = {}
        for other, dom in domains.items():
            if other == node:
                continue
            out[other] = tuple(
                o
                for o in dom
                if (not sites.intersection(o.sites) or (shareable and getattr(o, "shareable", False)))
                and (other not in succ or compatible(placement, o))
                and (other not in pred or compatible(o, placement))
            )
        return out

    best: dict[str, Placement] = {}
    best_value: Value = (-1, -1, -1.0)
    steps = 0
    exhaustive = True

    def add(a: Value, b: Value) -> Value:
        return a[0] + b[0], a[1] + b[1], round(a[2] + b[2], 9)

    def visit(domains: dict[str, tuple[Placement, ...]], chosen: dict[str, Placement], value: Value) -> None:
        nonlocal best, best_value, steps, exhaustive
        steps += 1
        if steps > max_steps:
            exhaustive = False
            return
        if add(value, bound(domains)) <= best_value:
            return
        open_nodes = [n for n, dom in domains.items() if dom]
        if not open_nodes:
            best, best_value = dict(chosen), value
            return
        node = min(open_nodes, key=lambda n: (-(n in required_set), len(domains[n]), n))
        for placement in domains[node]:
            chosen[node] = placement
            visit(propagate(domains, node, placement), chosen, add(value, weight(node, placement)))
            del chosen[node]
            if not exhaustive:
                return
        rest = dict(domains)
        rest[node] = ()
        visit(rest, chosen, value)  # leave the node out

    visit(dict(start), {}, (0, 0, 0.0))
    conflicted = sorted(n for n in nodes if start[n] and n not in best)
    return Assignment(chosen=best, conflicted=conflicted, explored=steps, exhaustive=exhaustive)
