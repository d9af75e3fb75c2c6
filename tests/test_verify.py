"""The verify core on a real trained model: true claims hold, wrong ones are rejected.

The 1-layer zoo model is the paper's baseline: Base Add split over two layer-0 heads at
each answer token, one head reading the previous column, the MLP combining them, and
no carry cascade. Placed sites are measured facts of the shipped weights, not assumed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from circuitspec.engine import Engine, Site
from circuitspec.engine.facts import FactsParams, load_or_compute
from circuitspec.match.matcher import Memo, match
from circuitspec.spec import expand, load
from circuitspec.verify.core import verify_model

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.fixture(scope="module")
def one_layer_verdicts(add5_1layer_model):
    specs = [load(SPECS / f) for f in ("addition_1layer.yaml", "negative_control.yaml", "addition.yaml")]
    return {v.hypothesis: v for v in verify_model(specs, add5_1layer_model, seed=0)}


def test_one_layer_nodes_sit_where_the_paper_puts_them_but_the_carry_bypasses_the_mlp(one_layer_verdicts, add5_1layer_model):
    """Every node of the paper's 1-layer algorithm is confirmed, and so is SA(n) -> A(n); path patching
    shows that the Carry One heads write part of the carry straight into the answer logits, so through
    the layer-0 MLP alone SC(n-1) moves A(n) as predicted on too few pairs: those edges fail, and so does
    the hypothesis as written ("the MLP combines them")."""
    v = one_layer_verdicts["addition_1layer"]
    assert all(n.status == "confirmed" for n in v.nodes if n.required), v.summary
    for n in range(5):
        e = v.edge(f"SA{n}", f"A{n}")
        assert e.status == "confirmed" and e.pairs >= 20, e
    carry = [v.edge(f"SC{n - 1}", f"A{n}") for n in range(1, 6)]
    failed = [e for e in carry if e.status == "failed"]
    assert failed and all(e.accuracy.high < 0.9 and e.example for e in failed), carry
    assert v.status == "fails" and "edges failed" in v.summary
    layout = add5_1layer_model.task.layout
    for n in range(5):
        sa = v.node(f"SA{n}")
        sites = [Site.parse(s) for s in sa.sites]
        assert {(s.kind, s.layer, s.position) for s in sites} == {("head", 0, layout.predicts(n))}
        assert all(t.accuracy.value >= 0.9 and t.pairs >= 20 for t in sa.tests)
    assert v.metrics.faithfulness is not None and v.metrics.faithfulness.low <= v.metrics.faithfulness.value
    assert "sign" not in v.metrics.scope  # an addition hypothesis says nothing about the '+' sign


def test_wrong_and_inapplicable_hypotheses_are_not_accepted(one_layer_verdicts):
    wrong = one_layer_verdicts["negative_control"]
    assert wrong.status == "fails"
    assert wrong.nodes and all(n.status == "not_placed" for n in wrong.nodes)
    cascade = one_layer_verdicts["addition"]
    assert cascade.status == "not_applicable" and "layers" in cascade.summary


def test_shuffled_positions_are_rejected(add5_1layer_model):
    """Permute where a true hypothesis puts its SA nodes: the matcher must not follow."""
    engine = Engine(add5_1layer_model, seed=0)
    facts = load_or_compute(engine, FactsParams(seed=0, probe_questions=0, tricase_per_case=0))
    graph = expand(load(SPECS / "addition_1layer.yaml"), add5_1layer_model.card)
    sa = sorted(n for n in graph.nodes if n.startswith("SA"))
    positions = [graph.nodes[n]["instance"].positions for n in sa]
    order, rng = list(range(len(sa))), random.Random(7)
    while any(i == j for i, j in enumerate(order)):  # a derangement: every node moves
        rng.shuffle(order)
    for node, j in zip(sa, order):
        graph.nodes[node]["instance"] = graph.nodes[node]["instance"].model_copy(update={"positions": positions[j]})
    m = match(graph, engine, facts, seed=0)
    assert not any(n in m.assignment.chosen for n in sa)


def test_same_command_gives_the_same_json(add5_1layer_model, one_layer_verdicts):
    again = verify_model([load(SPECS / "negative_control.yaml")], add5_1layer_model, seed=0)[0]
    assert again.to_json() == one_layer_verdicts["negative_control"].to_json()


def test_hypotheses_that_share_nodes_share_their_tests_and_get_the_verdicts_they_get_alone(add5_1layer_model):
    """The look-ahead refinement repeats the paper's 1-layer nodes: verified after it on one model,
    it reuses their pairs and scores (``match.Memo``) and its verdict is byte for byte the one it
    gets on its own."""
    base, refined = load(SPECS / "addition_1layer.yaml"), load(SPECS / "addition_1layer_lookahead.yaml")
    together = verify_model([base, refined], add5_1layer_model, seed=0)[1]
    alone = verify_model([refined], add5_1layer_model, seed=0)[0]
    assert together.to_json() == alone.to_json()

    engine = Engine(add5_1layer_model, seed=0)
    facts = load_or_compute(engine, FactsParams.preset(0))
    memo = Memo()
    first = match(expand(base, add5_1layer_model.card), engine, facts, seed=0, memo=memo)
    scored = len(memo.scores)
    assert scored and memo.reused == 0
    second = match(expand(refined, add5_1layer_model.card), engine, facts, seed=0, memo=memo)
    assert memo.reused == scored  # every score of the shared SA / SC / A nodes came from the memo
    assert len(memo.scores) > scored  # the look-ahead nodes were scored
    for node in first.assignment.chosen:
        if node in second.assignment.chosen:
            assert first.sites(node) == second.sites(node)


def test_cascade_pairs_take_both_routes(add6_model):
    """SV(3) changes through its own column or, where that is a sum-9 tie, through the carry
    from below; half the pairs take the second route, so a unit reading only column 3 fails them."""
    import torch

    from circuitspec.match.causal import draw_pairs

    torch.set_num_threads(1)
    engine = Engine(add6_model, seed=0)
    task = engine.task
    pairs = draw_pairs(engine, ("SV", 3), n_pairs=64, keep=[], seed=3)
    assert len(pairs.base) == 64
    assert torch.all(task.variable(pairs.base, "SV", 3) != task.variable(pairs.source, "SV", 3))
    tied = (task.variable(pairs.base, "ST", 3) == 1) & (task.variable(pairs.source, "ST", 3) == 1)
    assert int(tied.sum()) >= 32
    assert torch.all(task.variable(pairs.base[tied], "SV", 2) != task.variable(pairs.source[tied], "SV", 2))
    direct = draw_pairs(engine, ("SA", 3), n_pairs=64, keep=[], seed=3)  # one route only
    assert len(direct.base) == 64


def test_pairs_run_the_clean_model_only_on_rows_they_can_use(add5_1layer_model, monkeypatch):
    """Pairs are taken round-robin over classes from the rows the clean model answers right; it
    runs on a prefix of each class's candidates only, and the rows chosen are the ones a clean
    run over every candidate gives. The 1-layer model gets long carry cascades wrong."""
    import torch

    from circuitspec.match.causal import _answered_round_robin

    torch.set_num_threads(1)
    engine = Engine(add5_1layer_model, seed=0)
    classes, size = ["S3", "S4", "S5"], 60
    base = torch.cat([engine.questions(size, seed=1, cls=c) for c in classes])
    source = torch.cat([engine.questions(size, seed=2, cls=c) for c in classes])
    ok = torch.rand(len(base), generator=torch.Generator().manual_seed(0)) > 0.2
    keep = ok & engine.clean(base).question_correct & engine.clean(source).question_correct
    assert (ok & ~keep).any()  # some usable rows are answered wrong: the check matters
    checked = []
    clean = engine.clean
    # each checked pair runs its base rows plainly (and its sources as recalled sources): count the bases
    monkeypatch.setattr(
        engine, "clean", lambda tokens, **kw: (checked.append(len(tokens)) if kw.get("recall") != "sources" else None) or clean(tokens, **kw)
    )
    for n in (1, 20, 500):
        checked.clear()
        order, wrong = _answered_round_robin(engine, base, source, ok, len(classes), size, n)
        buckets = [(keep[g * size : (g + 1) * size].nonzero().flatten() + g * size).tolist() for g in range(len(classes))]
        assert order.tolist() == [b[i] for i in range(size) for b in buckets if i < len(b)][:n]
        if n <= 20:
            assert sum(checked) < int(ok.sum()) and wrong <= sum(checked)
        else:  # more pairs wanted than there are: every usable row was checked
            assert sum(checked) == int(ok.sum()) and wrong == int((ok & ~keep).sum())
