"""The assignment solver: one realisation per node, all edges respected, most evidence.

A branch-and-bound search over the nodes' confirmed options. Placing a node always
beats leaving it out (lexicographic objective: required nodes placed, then nodes
placed, then total score), no site serves two nodes, and every hypothesis edge must
be realisable as information flow between the chosen sites.
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
    # Most constrained nodes first keeps the tree narrow.
    order = sorted(options, key=lambda n: (len(options[n]), n))
    ranked = {n: sorted(options[n], key=lambda o: (-o.score, tuple(map(str, o.sites)))) for n in order}
    neighbours: dict[str, list[tuple[str, bool]]] = {n: [] for n in order}
    for src, dst in edges:
        if src in neighbours and dst in neighbours:
            neighbours[dst].append((src, True))
            neighbours[src].append((dst, False))

    def value(chosen: Mapping[str, Option]) -> tuple[int, int, float]:
        return (
            sum(1 for n in chosen if n in required_set),
            len(chosen),
            round(sum(o.score for o in chosen.values()), 9),
        )

    # Optimistic completion of the nodes from index i on.
    best_rest = [(0, 0, 0.0)] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        n = order[i]
        r, c, s = best_rest[i + 1]
        if ranked[n]:
            best_rest[i] = (r + (n in required_set), c + 1, s + ranked[n][0].score)
        else:
            best_rest[i] = (r, c, s)

    best: dict[str, Option] = {}
    best_value = (-1, -1, -1.0)
    used: set[Hashable] = set()
    chosen: dict[str, Option] = {}
    steps = 0
    exhaustive = True

    def fits(node: str, option: Option) -> bool:
        if used.intersection(option.sites):
            return False
        for other, other_is_source in neighbours[node]:
            placed = chosen.get(other)
            if placed is None:
                continue
            if other_is_source and not compatible(placed, option):
                return False
            if not other_is_source and not compatible(option, placed):
                return False
        return True

    def visit(i: int) -> None:
        nonlocal best, best_value, steps, exhaustive
        steps += 1
        if steps > max_steps:
            exhaustive = False
            return
        current = value(chosen)
        r, c, s = best_rest[i]
        bound = (current[0] + r, current[1] + c, current[2] + s)
        if bound <= best_value:
            return
        if i == len(order):
            best, best_value = dict(chosen), current
            return
        node = order[i]
        for option in ranked[node]:
            if fits(node, option):
                chosen[node] = option
                used.update(option.sites)
                visit(i + 1)
                used.difference_update(option.sites)
                del chosen[node]
                if not exhaustive:
                    return
        visit(i + 1)  # leave the node out

    visit(0)
    conflicted = sorted(n for n in order if ranked[n] and n not in best)
    return Assignment(chosen=best, conflicted=conflicted, explored=steps, exhaustive=exhaustive)
