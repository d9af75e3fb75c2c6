"""The gap report against ground truth: a planted hypothesis with one node left out.

The other nodes' circuit is exactly faithful (``testing.planted.left_out_hypothesis``), so the only
thing missing is the left-out node: the gap report must rank its site first, and its smallest set must
be that node's sites and reach the threshold. A sample of ``benchmarks/planted.py``'s 200 circuits:
one head node, one two-head node (neither head restores anything alone), one MLP node, 2 and 3 digits.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.testing.planted import LEFT_OUT_FAITHFULNESS, PlantParams, is_site_of, left_out_hypothesis, plant
from circuitspec.verify.core import verify_model

torch.set_num_threads(1)

CASES = [
    (PlantParams(digits=2, n_heads=4, split_prob=0.0), 3, "SA1"),  # two heads, one per operand digit
    (PlantParams(digits=2, n_heads=4), 5, "C2"),  # the head moving the top carry
    (PlantParams(digits=3, n_heads=4, decoy_heads=4), 2, "SV1"),  # the carry MLP in the middle of the cascade
]


@pytest.mark.parametrize(("params", "seed", "node"), CASES, ids=[c[2] for c in CASES])
def test_the_left_out_node_comes_first_in_the_gap_report(params, seed, node):
    planted = plant(params, seed)
    (verdict,) = verify_model([left_out_hypothesis(planted, node)], planted.model)
    assert node not in {n.node for n in verdict.nodes}
    assert verdict.status == "fails" and verdict.metrics.faithfulness.value < LEFT_OUT_FAITHFULNESS
    gap = verdict.gap
    assert gap is not None and gap.ranking
    assert all(is_site_of(planted, node, s) for s in gap.ranking[0].sites), (gap.ranking[0], planted.truth[node])
    chosen = [s for r in gap.smallest_set for s in r.sites]
    assert gap.reached and chosen and all(is_site_of(planted, node, s) for s in chosen)
    if planted.kinds[node] == "head":
        assert sorted(chosen) == sorted(planted.truth[node])
    else:
        assert chosen == [planted.mlp_truth[node]]


def test_left_out_hypothesis_drops_the_node_and_its_edges_only():
    planted = plant(PlantParams(digits=2, n_heads=4), 3)
    h = left_out_hypothesis(planted, "SV0")
    from circuitspec.spec import expand

    graph = expand(h, planted.model.card)
    assert "SV0" not in graph and {"SV1", "ST0", "C1", "C2"} <= set(graph.nodes)
    assert ("ST1", "SV1") in graph.edges and ("SV1", "C2") in graph.edges
    assert h.checks.min_faithfulness == LEFT_OUT_FAITHFULNESS
    assert all(graph.nodes[n]["instance"].site != "neurons" for n in graph.nodes)
    with pytest.raises(Exception, match="planted node"):
        left_out_hypothesis(planted, "SA9")
