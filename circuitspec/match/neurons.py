"""Neuron nodes: find a small set of MLP neurons that carries the node's variable.

One attribution pass per variable ranks every neuron of every MLP by how much patching
it from the source should move the answer towards the causal model's prediction
(interchange attribution); exact interchange tests are then spent on prefixes of
that ranking only: doubling sizes first, then bisection down to the smallest prefix
that passes and recovers ``RECOVERED`` of the best prefix's effect (the log-prob gain
of the predicted answers). Argmax accuracy alone is too coarse: a redundant code can
flip the answer with part of its neurons patched, so the set would miss neurons the
variable needs. Attribution is a linear estimate and can rank a unit that does nothing
when patched above one that matters, so the prefix is then pruned by exact tests: a
neuron whose removal keeps the set as good is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from circuitspec.engine import Engine, Site
from circuitspec.engine.attribution import attribute

RECOVERED = 0.95  # share of the best prefix's log-prob gain a set must reach
ATTRIBUTION_ROWS = 256


def search(sites: Sequence[Site], engine: Engine, pair_sets, evaluate: Callable) -> list:
    """Scored neuron-set placements for every MLP site in ``sites``."""
    mlps = [s for s in sites if s.kind == "mlp"]
    pairs = [p for p in pair_sets if len(p.base)]
    if not mlps or not pairs:
        return []
    # Interchange attribution towards the predicted answers, ranked by magnitude: units that
    # work in opposing pairs (the two ramps of a step) have large effects of opposite sign.
    scores = sum(
        attribute(
            engine,
            engine.answered(p.base[:ATTRIBUTION_ROWS], p.predicted[:ATTRIBUTION_ROWS]),
            baseline="interchange",
            source=p.source[:ATTRIBUTION_ROWS],
            targets=p.predicted[:ATTRIBUTION_ROWS],
        ).neurons
        for p in pairs
    )
    out = []
    for mlp in mlps:
        order = torch.argsort(-scores[mlp.layer, mlp.position].abs(), stable=True).tolist()
        out += _prefix_search(mlp, order, evaluate)
    return out


def _prefix_search(mlp: Site, order: list[int], evaluate: Callable) -> list:
    def placement(k: int) -> tuple[Site, ...]:
        return (Site.for_neurons(mlp.layer, mlp.position, order[:k]),)

    sizes = []
    k = 1
    while k < len(order):  # the whole MLP is tested as an 'mlp' site already
        sizes.append(k)
        k *= 2
    tried = dict(zip(sizes, evaluate([placement(k) for k in sizes])))
    passing = [e for e in tried.values() if e.passed]
    if not passing:
        return [max(tried.values(), key=lambda e: e.value)]
    target = RECOVERED * max(e.gain for e in passing)

    def good(e) -> bool:
        return e.passed and e.gain >= target

    hi = min(k for k, e in tried.items() if good(e))
    lo = max((k for k in tried if k < hi), default=0)
    while hi - lo > 1:  # smallest prefix in (lo, hi] that is as good as the best
        mid = (lo + hi) // 2
        (e,) = evaluate([placement(mid)])
        tried[mid] = e
        if good(e):
            hi = mid
        else:
            lo = mid
    return [_prune(mlp, order[:hi], tried[hi], good, evaluate)]


def _prune(mlp: Site, chosen: list[int], best, good: Callable, evaluate: Callable):
    """Drop, one at a time, the neuron whose removal leaves the best set that is still good."""
    while len(chosen) > 1:
        without = [[n for n in chosen if n != drop] for drop in chosen]
        results = evaluate([(Site.for_neurons(mlp.layer, mlp.position, rest),) for rest in without])
        still_good = [i for i, e in enumerate(results) if good(e)]
        if not still_good:
            break
        i = max(still_good, key=lambda i: (results[i].gain, -i))  # highest gain, earliest on ties
        chosen, best = without[i], results[i]
    return best
