"""The arithmetic task's layouts: the paper's, the answer digits reversed (units first), without the
sign token, operands unpadded (leading zeros blank), and their combinations.

The layout is part of the model card (and of a zoo name: ``add_rev_...``, ``add_nosign_...``);
positions a spec names (``A(n)``, ``predicts A(n)``) follow it, so one spec expands on each without
edits. Every layout is checked against the plain-integer reference (``task_reference``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from task_reference import batches, causal_answer, class_name, in_layout, variables, written

from circuitspec.errors import SpecError, TaskError
from circuitspec.models.card import ModelCard, TaskSpec, default_architecture, parse_name
from circuitspec.models.training import plan
from circuitspec.spec import expand, load
from circuitspec.spec.shape import make_shape
from circuitspec.strategies import Question, batch, counterfactual_pairs, questions
from circuitspec.tasks import VARIABLES, ArithmeticTask, Layout
from circuitspec.tasks.layout import BLANK, LAYOUTS, SIGNED_LAYOUTS
from circuitspec.tasks.registry import make_task, vocabulary

ROOT = Path(__file__).resolve().parents[1]
REVERSED = ROOT / "examples" / "models" / "add_rev_d5_l1_h3_t6K_s372001.json"
REVERSED_SPEC = ROOT / "examples" / "specs" / "addition_reversed.yaml"
NOSIGN = ROOT / "examples" / "models" / "add_nosign_d5_l1_h3_t6K_s372001.json"
UNPADDED = ROOT / "examples" / "models" / "add_unpad_d5_l1_h3_t6K_s372001.json"
FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layout_batches(draw, max_digits: int = 8):
    """(layout, op, digits, rows): a layout, then questions it can write (addition only without the sign)."""
    layout = draw(st.sampled_from(LAYOUTS))
    ops = draw(st.sampled_from(["+", "-", "+-"] if layout in SIGNED_LAYOUTS else ["+"]))
    digits, rows = draw(batches(ops=ops, max_digits=max_digits))
    used = {op for _, _, op in rows}
    return layout, "mix" if used == {"+", "-"} else "add" if used == {"+"} else "sub", digits, rows


@FAST
@given(layout_batches(), st.data())
def test_every_layout_writes_answers_variables_classes_and_the_causal_model_as_the_reference(case, data):
    layout, op, digits, rows = case
    task = ArithmeticTask(op, digits, layout)
    texts = [written(x, y, o, digits, layout) for x, y, o in rows]
    tokens = task.encode([t[: 2 * digits + 2] for t in texts])
    assert task.decode(tokens) == texts and tokens.shape == (len(rows), task.n_ctx)
    assert task.n_ctx == 3 * digits + 4 - ("nosign" in layout) and task.d_vocab == 15 + ("unpadded" in layout)
    assert torch.equal(task.encode(texts), tokens)
    every = task.all_variables(tokens)
    for name in every:
        assert every[name].tolist() == [variables(x, y, o, digits)[name] for x, y, o in rows], name
    assert [task.class_names[i] for i in task.classes(tokens).tolist()] == [class_name(x, y, o, digits) for x, y, o in rows]
    keys = [(name, n) for name, var in VARIABLES.items() for n in (var.digit_range(digits) if var.per_digit else [None])]
    chosen = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True))
    overrides = {k: data.draw(st.lists(st.integers(0, VARIABLES[k[0]].values - 1), min_size=len(rows), max_size=len(rows))) for k in chosen}
    got = task.decode(task.causal_answer(tokens, {k: torch.tensor(v) for k, v in overrides.items()}))
    want = [in_layout(causal_answer(x, y, o, digits, {k: v[i] for k, v in overrides.items()}), layout) for i, (x, y, o) in enumerate(rows)]
    assert got == want


@FAST
@given(layout_batches(max_digits=6), st.sampled_from([("SC", 1), ("SA", 0), ("SV", 2), ("A", 3), ("MV", 1), ("SGN", None)]))
def test_counterfactuals_are_the_papers_written_in_the_layout(case, key):
    """The same draws in every layout: sources with the same operands, the same prediction in the layout's order."""
    layout, op, digits, rows = case
    if key[0] in ("MV", "SGN") and op == "add" or key[0][0] == "S" and key[0] != "SGN" and op == "sub" or key[1] is not None and key[1] >= digits:
        return
    paper, task = ArithmeticTask(op, digits), ArithmeticTask(op, digits, layout)
    base = paper.encode([written(x, y, o, digits) for x, y, o in rows])
    a = paper.counterfactuals(base, key, torch.Generator().manual_seed(3))
    b = task.counterfactuals(task.encode([written(x, y, o, digits, layout) for x, y, o in rows]), key, torch.Generator().manual_seed(3))
    assert torch.equal(a.valid, b.valid) and a.reason == b.reason
    sources = [(int(t[:digits]), int(t[digits + 1 : 2 * digits + 1]), t[digits]) for t in paper.decode(a.source)]
    assert task.decode(b.source) == [written(x, y, o, digits, layout) for x, y, o in sources]
    assert task.decode(b.predicted) == [in_layout(p, layout) for p in paper.decode(a.predicted)]


@FAST
@given(st.sampled_from(LAYOUTS), st.data())
def test_the_strategies_write_questions_and_pairs_in_each_layout(layout, data):
    op = data.draw(st.sampled_from(["add", "mix"] if layout in SIGNED_LAYOUTS else ["add"]))
    task = ArithmeticTask(op, 5, layout)
    q: Question = data.draw(questions(op, 5, layout=layout))
    assert q.text == written(q.x, q.y, q.op, 5, layout) and Question.parse(q.text, layout) == q
    assert torch.equal(task.encode([q.question]), batch([q]))
    assert all(q.answer_digit(n) == int(q.answer[q.positions.a(n) - q.positions.first_answer]) for n in range(6))
    pair = data.draw(counterfactual_pairs(op, 5, "SC(1)", layout=layout))
    values = task.variable(pair.tokens(), "SC", 1)
    assert values.tolist() == [pair.base_value, pair.source_value] and pair.base_value != pair.source_value
    assert task.decode(task.causal_answer(pair.tokens()[:1], {("SC", 1): values[1:]})) == [pair.predicted]
    assert 2 in pair.changed_digits() and pair.predicted_digit(2) == int(pair.predicted[pair.answer_index(2)])


def test_nosign_and_unpadded_positions_and_tokens():
    nosign, unpadded = Layout(5, "nosign"), Layout(5, "reversed_nosign_unpadded")
    assert (nosign.n_ctx, nosign.a(5), nosign.a(0), nosign.predicts(5)) == (18, 12, 17, nosign.equals)
    assert nosign.answer_labels == ["A5", "A4", "A3", "A2", "A1", "A0"] and nosign.label(12) == "A5"
    assert (unpadded.a(0), unpadded.a(5), unpadded.d_vocab) == (12, 17, 16)
    with pytest.raises(TaskError, match="no sign token"):
        nosign.sign
    task = ArithmeticTask("add", 4, "unpadded")
    assert task.decode(task.encode(["__12+___0="])) == ["__12+___0=+00012"]
    with pytest.raises(TaskError, match=r"leading zeros as '_'") as err:
        task.encode(["0012+___0="])  # a zero where the layout writes a blank
    assert "__12+___0=" in err.value.render()
    with pytest.raises(TaskError, match="every digit"):
        ArithmeticTask("add", 4).encode(["__12+0000="])
    with pytest.raises(TaskError, match="needs the sign|do not fit|does not fit"):
        ArithmeticTask("sub", 4, "nosign")
    assert "nosign" not in vocabulary("mix").layouts and set(vocabulary("add").layouts) == set(LAYOUTS)


def test_enriched_unpadded_batches_hold_short_numbers_and_padded_ones_draw_as_before():
    def short(tokens):  # share of rows whose first operand is two or more digits short: D(3) blank
        return (tokens[:, Layout(5).d(3)] == BLANK).float().mean().item()

    paper, unpadded = ArithmeticTask("add", 5), ArithmeticTask("add", 5, "unpadded")
    drawn = {t.layout.name: t.generate(20_000, torch.Generator().manual_seed(4), enrich=True) for t in (paper, unpadded)}
    assert short(unpadded.generate(20_000, torch.Generator().manual_seed(4))) < 0.02  # uniform digits: about 1%
    assert short(drawn["unpadded"]) > 0.1  # cut to 1..3 digits with probability 0.25 * 3/5, plus those
    again = ArithmeticTask("add", 5, "nosign").generate(20_000, torch.Generator().manual_seed(4), enrich=True)
    assert torch.equal(again, torch.cat([drawn["paper"][:, :12], drawn["paper"][:, 13:]], dim=1))  # no extra draws


@pytest.mark.parametrize("layout", LAYOUTS)
def test_named_positions_follow_every_layout(layout):
    """addition_1layer names its positions only (D(n), D'(n), predicts A(n)): it expands unchanged on each layout."""
    h = load(ROOT / "specs" / "addition_1layer.yaml")
    lay = Layout(5, layout)
    g = expand(h, make_shape("add", 5, 1, 3, layout=layout))
    for n in range(5):
        assert g.nodes[f"SA{n}"]["instance"].positions == [lay.predicts(n)]
        assert g.nodes[f"SC{n}"]["instance"].positions == [lay.predicts(n + 1)]
    assert g.nodes["A5"]["instance"].positions == [lay.predicts(5)]
    assert sorted(g.edges) == sorted(expand(h, make_shape("add", 5, 1, 3)).edges)


def test_a_spec_naming_the_sign_says_the_layout_has_none():
    with pytest.raises(SpecError, match=r"addition.yaml:41:5: node ST\{n\} .*the nosign layout has no sign token"):
        expand(load(ROOT / "specs" / "addition.yaml"), make_shape("add", 5, 2, 3, layout="nosign"))


def test_reversed_answers_are_the_paper_answers_units_first():
    paper, rev = ArithmeticTask("add", 6), ArithmeticTask("add", 6, "reversed")
    assert rev.decode(rev.encode(["133357+182243="])) == ["133357+182243=+0065130"]
    assert rev.decode(rev.encode(["133357+182243=+0065130"])) == ["133357+182243=+0065130"]
    with pytest.raises(TaskError, match="wrong answer"):
        rev.encode(["133357+182243=+0315600"])
    tokens = paper.generate(256, torch.Generator().manual_seed(1))
    flipped = torch.cat([tokens[:, : paper.layout.sign + 1], tokens[:, paper.layout.sign + 1 :].flip(1)], dim=1)
    assert torch.equal(rev.answers(flipped), flipped[:, rev.layout.sign :])
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    a, b = paper.counterfactuals(tokens, ("SC", 2), g1), rev.counterfactuals(flipped, ("SC", 2), g2)
    assert torch.equal(a.predicted[:, 1:].flip(1), b.predicted[:, 1:]) and torch.equal(a.valid, b.valid)


def test_positions_follow_the_layout():
    paper, rev = Layout(5), Layout(5, "reversed")
    assert (paper.a(0), paper.a(5), rev.a(0), rev.a(5)) == (18, 13, 13, 18)
    assert rev.answer_labels == ["sign", "A0", "A1", "A2", "A3", "A4", "A5"]
    assert [rev.label(p) for p in (12, 13, 18)] == ["A6", "A0", "A5"]  # the sign is labelled A6, as in the paper
    with pytest.raises(TaskError, match="unknown layout"):
        Layout(5, "mirror")


def test_one_spec_expands_on_either_layout():
    h = load(ROOT / "specs" / "addition_1layer.yaml")
    paper = expand(h, make_shape("add", 5, 1, 3))
    rev = expand(h, make_shape("add", 5, 1, 3, layout="reversed"))
    assert paper.nodes["SA0"]["instance"].positions == [17] and rev.nodes["SA0"]["instance"].positions == [12]
    assert rev.nodes["SC1"]["instance"].positions == [14]  # predicts A(2): the token A(1)
    assert sorted(paper.edges) == sorted(rev.edges)
    with pytest.raises(SpecError, match="unknown layout"):
        make_shape("add", 5, 1, 3, layout="mirror")


def test_nosign_and_unpadded_are_in_the_card_and_the_name():
    parsed = parse_name("add_rev_nosign_unpad_d5_l1_h3_t6K_s1")
    assert parsed.layout == "reversed_nosign_unpadded" and parsed.name() == "add_rev_nosign_unpad_d5_l1_h3_t6K_s1"
    assert parse_name("add_nosign_d5_l1_h3_s1").layout == "nosign" and parse_name("add_unpad_d5_l1_h3_s1").layout == "unpadded"
    card = plan("add_nosign_unpad_d5_l1_h3_s372001", steps=6000)
    assert (card.task.layout, card.architecture.n_ctx, card.architecture.d_vocab) == ("nosign_unpadded", 18, 16)
    assert ModelCard.model_validate_json(card.to_json()) == card
    with pytest.raises(TaskError, match="unknown layout of sub"):
        plan("sub_nosign_d5_l1_h3_s1", steps=100)
    with pytest.raises(ValueError, match="uses 16 tokens"):
        ModelCard(name="x", architecture=default_architecture(5, 1, 3), task=TaskSpec(op="add", digits=5, layout="unpadded"))


def test_the_layout_is_part_of_the_card_and_the_name():
    parsed = parse_name("add_rev_d5_l1_h3_t6K_s372001")
    assert parsed.layout == "reversed" and parsed.name() == "add_rev_d5_l1_h3_t6K_s372001"
    card = plan("add_rev_d5_l1_h3_s372001", steps=6000)
    assert card.task.layout == "reversed" and card.shape.layout == "reversed" and card.name == "add_rev_d5_l1_h3_t6K_s372001"
    assert ModelCard.model_validate_json(card.to_json()) == card
    assert parse_name("add_d5_l1_h3_s1").layout is None and ArithmeticTask("add", 5).layout.name == "paper"
    with pytest.raises(ValueError, match="unknown layout"):
        ModelCard(name="x", architecture=default_architecture(5, 1, 3), task=TaskSpec(op="add", digits=5, layout="mirror"))
    assert make_task("add", 5, "reversed").layout.reversed
    with pytest.raises(TaskError, match="unknown layout"):
        make_task("examples.reverse_task:ReverseTask", 5, "reversed")


def test_the_reversed_model_reads_the_carry_from_the_digit_it_just_emitted():
    """One layer suffices in the reversed layout: the head at the token A(n) that attends column n
    carries the whole cascaded carry SV(n); in the paper's layout the same hypothesis fails."""
    import circuitspec as cs

    rev = cs.load_model(REVERSED)
    assert rev.card.task.layout == "reversed" and rev.card.results.per_class["S5"].accuracy == 1.0
    verdict = cs.verify(REVERSED_SPEC, rev)
    assert verdict.status == "holds" and verdict.metrics.faithfulness.value >= 0.9
    placed = {n.node: n.sites for n in verdict.nodes}
    assert placed["SV2"] == ["P15.L0.H2"] and placed["SA2"] == ["P14.L0.H0", "P14.L0.H1"]
    assert cs.verify(ROOT / "specs" / "addition_1layer.yaml", rev).status == "holds"  # the paper's spec, unedited
    paper = cs.verify(REVERSED_SPEC, "add_d5_l1_h3_t6K_s372001")
    assert paper.status == "fails" and paper.metrics.faithfulness.value < 0.5


def test_the_nosign_model_runs_the_paper_spec_unedited_and_needs_its_look_ahead_heads():
    """Without the sign token, 6K steps already grow the one-column look-ahead heads that the paper-layout
    model grows only by 15K: addition_1layer places every node and edge but keeps too few answers; the
    look-ahead refinement holds, its LA(n) heads at the token predicting A(n), A(5)'s at '='."""
    import circuitspec as cs

    model = cs.load_model(NOSIGN)
    assert model.card.task.layout == "nosign" and model.card.architecture.n_ctx == 18
    plain = cs.verify(ROOT / "specs" / "addition_1layer.yaml", model)
    assert plain.status == "fails" and all(n.status == "confirmed" for n in plain.nodes)
    assert all(e.status == "confirmed" for e in plain.edge_results) and plain.metrics.faithfulness.value < 0.9
    ahead = cs.verify(ROOT / "specs" / "addition_1layer_lookahead.yaml", model)
    assert ahead.status == "holds" and ahead.metrics.faithfulness.value >= 0.9
    placed = {n.node: n.sites for n in ahead.nodes}
    assert placed["LA5"] == ["P11.L0.H1"] and placed["A5"] == ["P11.L0.MLP"] and model.task.layout.label(11) == "="


def test_the_unpadded_model_reads_blanks_as_zeros_and_holds_the_look_ahead_spec():
    """On operands of every length (blanks below the top digit, which uniform digits almost never give)
    the unpadded model answers S0..S2 as well as uniform questions; the look-ahead hypothesis holds on it."""
    import circuitspec as cs
    from circuitspec.models.evaluate import predictions
    from circuitspec.tasks.columns import split

    model = cs.load_model(UNPADDED)
    task, g, n = model.task, torch.Generator().manual_seed(11), 4000
    x, y, opr = split(task.generate(n, g), 5)
    for v in (x, y):
        v.masked_fill_(torch.arange(5) >= torch.randint(1, 6, (n, 1), generator=g), 0)
    tokens = task.assemble(x, y, opr)
    assert (tokens[:, Layout(5).d(2)] == BLANK).float().mean() > 0.3  # many numbers of two digits or fewer
    right = (predictions(model, tokens) == tokens[:, -task.n_answer :]).all(1)
    easy = task.classes(tokens) <= 2
    assert right[easy].float().mean() >= 0.99
    verdict = cs.verify(ROOT / "specs" / "addition_1layer_lookahead.yaml", model)
    assert verdict.status == "holds" and verdict.metrics.faithfulness.value >= 0.9


def test_spec_check_takes_a_layout(capsys):
    from circuitspec.cli import main

    spec = str(ROOT / "specs" / "addition_1layer.yaml")
    assert main(["spec", "check", spec, "--digits", "5", "--layers", "1", "--layout", "reversed_nosign", "-q"]) == 0
    assert "add reversed_nosign d5 l1 h3 (options): 16 nodes, 10 edges" in capsys.readouterr().out
    assert main(["spec", "check", str(ROOT / "specs" / "addition.yaml"), "--layout", "nosign"]) == 2
    assert "addition.yaml:41:5" in capsys.readouterr().err
    assert main(["spec", "check", spec, "--layout", "mirror"]) == 2
    assert "unknown layout of add 'mirror'" in capsys.readouterr().err
