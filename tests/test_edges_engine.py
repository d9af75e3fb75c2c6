"""Edges at the bottom layers: the causal model's path-specific overrides and the engine's path patching."""

from __future__ import annotations

import torch

from circuitspec.engine import Engine, Site
from circuitspec.engine.paths import PathPatch, path_patch
from circuitspec.tasks import ArithmeticTask
from circuitspec.tasks import causal, dag
from circuitspec.tasks.columns import split
from circuitspec.vocabulary import VARIABLES
from naive import path_patch_naive


def test_path_answer_changes_only_what_the_receiver_feeds():
    task = ArithmeticTask("add", 4)
    base = task.encode(["1951+0049="])  # carry out of column 0, columns 1 and 2 sum to 9: answer 02000
    source = task.encode(["1950+0049="])  # no carry out of column 0: answer 01999
    answer = lambda t: "".join(map(str, t[0, 1:].tolist()))  # noqa: E731  (A4..A0)
    assert answer(task.answers(base)) == "02000"
    assert answer(task.path_answer(base, source, ("ST", 0), [("SV", 2)])) == "01000"  # only A3 reads SV(2)
    assert answer(task.path_answer(base, source, ("ST", 0), [("SV", 1)])) == "01900"  # SV(1) and what reads it: A2, SV(2), A3
    assert answer(task.path_answer(base, source, ("ST", 0), [("A", 1)])) == "02090"
    assert answer(task.path_answer(base, source, ("SA", 0), [("A", 1)])) == "02000"  # SA(0) does not reach A(1)
    full = task.causal_answer(base, {("ST", 0): task.variable(source, "ST", 0)})
    assert answer(full) == "01990"  # every route; SA(0) is not ST(0)
    assert task.path_ties(("ST", 0), ("SV", 2)) == [("ST", 1), ("ST", 2)]
    assert task.reaches(("SC", 0), ("A", 3)) and not task.reaches(("SA", 0), ("SV", 2))


def test_dag_covers_every_dependence_of_the_causal_model():
    """Forcing a variable changes only variables the DAG says descend from it."""
    for op, digits in (("mix", 3),):  # every variable is computed for every row
        task = ArithmeticTask(op, digits)
        tokens = task.generate(400, torch.Generator().manual_seed(5))
        x, y, opr = split(tokens, digits)
        clean = causal.evaluate(x, y, opr)
        keys = [(n, c) for n, v in VARIABLES.items() for c in (v.digit_range(digits) if v.per_digit else [None])]
        for key in keys:
            value = (causal.pick(clean, key).long() + 1) % VARIABLES[key[0]].values
            forced = causal.evaluate(x, y, opr, {key: value})
            for other in keys:
                if other == key or other[0] not in forced:
                    continue
                moved = bool((causal.pick(forced, other) != causal.pick(clean, other)).any())
                assert not moved or dag.reaches(key, other, op, digits), (op, key, other)


def _patches(engine, b, s):
    S = Site.parse
    return [
        PathPatch((S("P12.L0.H0"),), (S("P16.L1.MLP"),), (S("P16.L0.H1"), S("P14.L1.H2")), b, s, "tail head -> MLP"),
        PathPatch((S("P13.L0.H1"), S("P13.L0.H2")), (S("P17.L1.H0"), S("P17.L1.N[3,5,7]")), (S("P17.L0.H0"),), b[:30], s[:30]),
        PathPatch((S("P17.L0.H1"),), (S("P17.L0.MLP"),), (), b, s, "same position, same layer"),
        PathPatch((S("P12.L0.H0"),), (S("P16.L1.MLP"),), (S("P16.L0.H1"), S("P14.L1.H2")), b, s, "to the answer", route="answer"),
    ]


def test_path_patch_equals_one_hooked_edge_at_a_time(add6_model):
    engine = Engine(add6_model)
    b, s = engine.questions(64, seed=1), engine.questions(64, seed=2)
    patches = _patches(engine, b, s)
    fast = path_patch(engine, patches)
    slow = path_patch_naive(engine, patches)
    clean = engine.clean(b).pred
    for p, f, n in zip(patches, fast.pred, slow):
        assert torch.equal(f, n)
    assert (fast.pred[2] != clean).any(), "the same-position edge changes some answers"
    # rows do not depend on their batch: one patch alone gives the same answers
    alone = path_patch(engine, patches[1:2])
    assert torch.equal(alone.pred[0], fast.pred[1])


def test_path_patch_blocks_the_route_around_the_receiver(add6_model):
    """Patching the sender everywhere changes more answers than the path through one receiver."""
    from circuitspec.engine import Intervention

    engine = Engine(add6_model)
    b, s = engine.questions(96, seed=3), engine.questions(96, seed=4)
    sender = (Site.parse("P17.L0.H1"), Site.parse("P17.L0.H2"))
    whole = engine.run(b, [Intervention("interchange", sender, source=s)]).pred[0]
    through = path_patch(engine, [PathPatch(sender, (Site.parse("P17.L0.MLP"),), (), b, s)]).pred[0]
    nothing = path_patch(engine, [PathPatch(sender, (Site.parse("P16.L1.MLP"),), (), b, s)]).pred[0]
    clean = engine.clean(b).pred
    assert torch.equal(nothing, clean)  # an earlier position never reads a later one
    assert (through != clean).sum() <= (whole != clean).sum()


def test_answer_route_is_the_receiver_and_around_it(add6_model):
    """route="answer" with nothing frozen is the sender's plain interchange; freezing a site on the
    way removes only that site's share; the receiver alone (route "target") changes no more answers."""
    from circuitspec.engine import Intervention

    engine = Engine(add6_model)
    b, s = engine.questions(96, seed=3), engine.questions(96, seed=4)
    sender = (Site.parse("P17.L0.H1"), Site.parse("P17.L0.H2"))
    mlp = (Site.parse("P17.L1.MLP"),)
    whole = engine.run(b, [Intervention("interchange", sender, source=s)]).pred[0]
    out = path_patch(engine, [PathPatch(sender, mlp, (), b, s, route="answer"), PathPatch(sender, mlp, (), b, s)])
    answer, through = out.pred
    assert torch.equal(answer, whole)
    clean = engine.clean(b).pred
    assert (through != clean).sum() <= (answer != clean).sum()
