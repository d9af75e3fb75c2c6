"""Edge tests against ground truth: planted circuits with true and false edges (``testing.edges``).

True edges (every edge of the planted algorithm, and ``SV(n-1) -> A(n)`` through an unnamed
carry-moving head) must be confirmed; false ones (routes the planted model does not use) must
fail, and so must a hypothesis that requires them. A sample of circuits; the acceptance run
over 200 is ``benchmarks/planted.py``.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.render.junit import junit_xml
from circuitspec.render.table import rows
from circuitspec.spec import Hypothesis
from circuitspec.testing.edges import EDGE_KINDS, FALSE_KINDS, edge_hypothesis_yaml, edge_recovery, edge_truth
from circuitspec.testing.planted import PlantParams, plant
from circuitspec.verify.core import verify_model

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "params, seed, kinds",
    [
        (PlantParams(digits=2, n_heads=4, decoy_heads=3), 2, EDGE_KINDS),
        (PlantParams(digits=3, n_heads=4, split_prob=1.0, decoy_heads=2), 5, (None, "skip_cascade")),
    ],
)
def test_true_edges_are_confirmed_and_false_ones_fail(params, seed, kinds):
    planted = plant(params, seed)
    verdicts = verify_model([Hypothesis.from_yaml(edge_hypothesis_yaml(planted, k)) for k in kinds], planted.model, seed=0)
    for kind, v in zip(kinds, verdicts):
        r = edge_recovery(planted, v, kind)
        assert r.true_confirmed == r.true_edges, (kind, r.missed)
        assert r.false_accepted == 0, (kind, r.accepted)
        assert [(e.source, e.target) for e in v.edge_results] == sorted(edge_truth(planted, kind))
        if kind in FALSE_KINDS:
            assert v.status == "fails", v.summary
            bad = [e for e in v.edge_results if not edge_truth(planted, kind)[(e.source, e.target)]]
            assert bad and all(e.status == "failed" and e.accuracy.high < 0.9 and e.example for e in bad)
            assert "edges failed" in v.summary
        else:
            assert v.status == "holds", (kind, v.summary)
    right = verdicts[0]
    edges = len(right.edge_results)
    assert rows([right])[0][4] == f"{edges}/{edges}"
    assert b'name="edges_confirmed"' in junit_xml([right])


def test_the_unnamed_mover_edge_names_no_mover_site():
    """SV(n-1) -> A(n) is confirmed with the mover head outside the circuit (no node holds it)."""
    planted = plant(PlantParams(digits=2, n_heads=4, decoy_heads=0), 2)
    v = verify_model([Hypothesis.from_yaml(edge_hypothesis_yaml(planted, "unnamed_mover"))], planted.model, seed=0)[0]
    placed = {s for n in v.nodes for s in n.sites}
    for k in (1, 2):
        mover = planted.truth[f"C{k}"]
        e = v.edge(f"SV{k - 1}", f"A{k}")
        assert e.status == "confirmed" and e.pairs >= 20
        assert not set(mover) & placed and not set(mover) & set(e.frozen)


@pytest.mark.parametrize("kind", [None, "st_to_answer", "skip_cascade"])
def test_the_answer_route_still_needs_a_path_around_the_other_nodes(kind):
    """route: answer (through the target or around it) keeps true edges confirmed, and a false edge
    whose only route runs through other nodes (frozen) still fails."""
    planted = plant(PlantParams(digits=2, n_heads=4, decoy_heads=3), 2)
    h = Hypothesis.from_yaml(edge_hypothesis_yaml(planted, kind, route="answer"))
    assert {e.route for e in h.edges} == {"answer"}
    v = verify_model([h], planted.model, seed=0)[0]
    r = edge_recovery(planted, v, kind)
    assert r.true_confirmed == r.true_edges, r.missed
    assert r.false_accepted == 0, r.accepted
    assert all("through the target or around it" in e.detail for e in v.edge_results if e.status != "untested")
