"""Candidate sites for a node: where it may be, and what the facts say it must do.

Location (kind, positions, layers) comes from the node; behaviour constraints (attends,
impacts, breaks / spares) are checked against the engine's cached facts, so a site
that, say, attends nowhere near D(n) is never spent an interchange test on.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuitspec.engine import Engine, Site
from circuitspec.engine.facts import Facts
from circuitspec.engine.sites import all_sites
from circuitspec.spec.instance import NodeInstance

_ENUMERATED = {"head": ("head",), "mlp": ("mlp",), "neurons": ("mlp",), "any": ("head", "mlp")}


def allowed_sites(node: NodeInstance, shape) -> list[Site]:
    """Every head / MLP site the node's kind, positions and layers allow (neurons: their MLP)."""
    if node.mlp_layers is not None:
        heads = all_sites(shape, kinds=("head",), positions=node.positions, layers=node.layers)
        return sorted(heads + all_sites(shape, kinds=("mlp",), positions=node.positions, layers=node.mlp_layers))
    return all_sites(shape, kinds=_ENUMERATED[node.site], positions=node.positions, layers=node.layers)


def filter_by_facts(node: NodeInstance, sites: Sequence[Site], facts: Facts) -> list[Site]:
    """The sites whose measured behaviour satisfies every constraint of the node.

    Constraints that concern a single site's ablation (impacts, breaks, spares) are not
    applied to heads of a node that may be split over several heads (``max_heads`` or
    ``spread``): one head of a jointly computed variable need not show the joint effect on
    its own. A spread node's MLPs are still held to them: that is what picks, among the
    MLPs its positions allow, those that serve its digits.
    """
    solo = node.max_heads <= 1 and not node.spread
    return [s for s in sites if _fits(node, s, facts, apply_ablation=solo or s.kind != "head")]


def _fits(node: NodeInstance, site: Site, facts: Facts, *, apply_ablation: bool) -> bool:
    measured = facts.site(site)
    if site.kind == "head":
        shares = {a.position: a.share for a in measured.attention}
        for positions, min_share in node.attends:
            if sum(shares.get(p, 0.0) for p in positions) < min_share:
                return False
    if not apply_ablation:
        return True
    impacted = set(measured.impacts)
    if node.impacts_exactly is not None and impacted != set(node.impacts_exactly):
        return False
    if not set(node.impacts_at_least) <= impacted:
        return False
    failing = set(measured.failing_classes)
    if not set(node.breaks) <= failing:
        return False
    return not set(node.spares) & failing


def served(sites: Sequence[Site], facts: Facts, engine: Engine) -> set[str]:
    """Answer labels a placement is held to in its interchange test.

    The labels some site measurably changes when ablated (a neuron set serves what its
    MLP serves); when ablation shows none (a redundant copy), every answer token the
    sites can reach (``Engine.answers_reached``).
    """
    out: set[str] = set()
    for s in sites:
        whole = Site.for_mlp(s.layer, s.position) if s.kind == "neurons" else s
        out.update(facts.site(whole).impacts)
    if out:
        return out
    return set().union(*(engine.answers_reached(s) for s in sites))
