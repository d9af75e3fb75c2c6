"""The assignment solver: one realisation per node, all edges respected, most evidence.

A branch-and-bound search over the nodes' confirmed options. Placing a node always
beats leaving it out (lexicographic objective: required nodes placed, then nodes
placed, then total score), no site serves two nodes, and every hypothesis edge must
be realisable as information flow between the chosen sites.

Each choice is propagated at once (forward checking): the options of the other nodes
that now share a site or break an edge are struck out, the most constrained node is
decided next, and the bound counts only options that are still possible. That keeps
the search exact and small on hypotheses with dozens of nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    """One way to realise a node: its sites and the causal evidence for it."""

    sites: tuple[Hashable, ...]
    score: float


@dataclass
class Assignment:
    chosen: dict[str, Option] = field(default_factory=dict)
    # nodes with passing options that no consistent assignment could place
    conflicted: list[str] = field(default_factory=list)
    explored: int = 0
    exhaustive: bool = True


Value = tuple[int, int, float]


def solve(
    options: Mapping[str, Sequence[Option]],
    edges: Sequence[tuple[str, str]],
    compatible: Callable[[Option, Option], bool],
    *,
    required: Sequence[str] = (),
    max_steps: int = 200_000,
) -> Assignment:
    """Best assignment of options to nodes.

    ``compatible(src, dst)`` says whether information can flow from the sites of
    ``src`` to those of ``dst``. The search is exact unless it needs more than
    ``max_steps`` expansions, in which case the best assignment found so far is
    returned with ``exhaustive=False``.
    """
    required_set = set(required)
    nodes = sorted(options)
    start = {n: tuple(sorted(options[n], key=lambda o: (-o.score, tuple(map(str, o.sites))))) for n in nodes}
    out_edges: dict[str, list[str]] = {n: [] for n in nodes}
    in_edges: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        if src in start and dst in start and src != dst:
            out_edges[src].append(dst)
            in_edges[dst].append(src)

    def weight(node: str, option: Option) -> Value:
        return (int(node in required_set), 1, option.score)

    def bound(domains: Mapping[str, tuple[Option, ...]]) -> Value:
        r = c = 0
        s = 0.0
        for node, dom in domains.items():
            if dom:
                r += node in required_set
                c += 1
                s += dom[0].score  # domains stay sorted best first
        return r, c, s

    def propagate(domains: dict[str, tuple[Option, ...]], node: str, option: Option) -> dict[str, tuple[Option, ...]]:
        sites = set(option.sites)
        succ, pred = set(out_edges[node]), set(in_edges[node])
        out = {}
        for other, dom in domains.items():
            if other == node:
                continue
            out[other] = tuple(
                o
                for o in dom
                if not sites.intersection(o.sites)
                and (other not in succ or compatible(option, o))
                and (other not in pred or compatible(o, option))
            )
        return out

    best: dict[str, Option] = {}
    best_value: Value = (-1, -1, -1.0)
    steps = 0
    exhaustive = True

    def add(a: Value, b: Value) -> Value:
        return a[0] + b[0], a[1] + b[1], round(a[2] + b[2], 9)

    def visit(domains: dict[str, tuple[Option, ...]], chosen: dict[str, Option], value: Value) -> None:
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
        for option in domains[node]:
            chosen[node] = option
            visit(propagate(domains, node, option), chosen, add(value, weight(node, option)))
            del chosen[node]
            if not exhaustive:
                return
        rest = dict(domains)
        rest[node] = ()
        visit(rest, chosen, value)  # leave the node out

    visit(dict(start), {}, (0, 0, 0.0))
    conflicted = sorted(n for n in nodes if start[n] and n not in best)
    return Assignment(chosen=best, conflicted=conflicted, explored=steps, exhaustive=exhaustive)
