"""The hypothesis language: the shipped specs, expansion rules, builder == YAML, errors with locations."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from circuitspec.errors import SpecError
from circuitspec.spec import (
    EACH_DIGIT,
    Hypothesis,
    HypothesisBuilder,
    applies_to,
    attends,
    can_feed,
    expand,
    load,
    loads,
    make_shape,
    site_can_feed,
)
from circuitspec.tasks.layout import Layout

SPECS = Path(__file__).resolve().parent.parent / "specs"

# (spec, shape) pairs every shipped spec must expand for: the paper's zoo shapes it applies to.
SHAPES = [
    ("addition", ("add", 5, 2, 3)),
    ("addition", ("add", 6, 2, 3)),
    ("addition", ("add", 8, 2, 3)),
    ("addition", ("add", 6, 3, 4)),
    ("addition", ("add", 10, 2, 3)),
    ("addition_2layer", ("add", 3, 2, 3)),
    ("addition_2layer", ("add", 7, 2, 3)),
    ("addition_2layer", ("add", 6, 3, 4)),
    ("addition_2layer_v2", ("add", 3, 2, 3)),
    ("addition_2layer_v2", ("add", 7, 2, 3)),
    ("addition_2layer_v2", ("add", 6, 3, 4)),
    ("addition_2layer_v3", ("add", 3, 2, 3)),
    ("addition_2layer_v3", ("add", 8, 2, 3)),
    ("addition_2layer_v3", ("add", 6, 3, 4)),
    ("addition_2layer_v4", ("add", 3, 2, 3)),
    ("addition_2layer_v4", ("add", 9, 2, 3)),
    ("addition_2layer_v4", ("add", 6, 3, 4)),
    ("addition_1layer", ("add", 5, 1, 3)),
    ("addition_1layer", ("add", 6, 1, 3)),
    ("addition_1layer_lookahead", ("add", 5, 1, 3)),
    ("addition_1layer_lookahead", ("add", 6, 1, 3)),
    ("subtraction", ("sub", 6, 2, 3)),
    ("subtraction_2layer_v2", ("sub", 3, 2, 3)),
    ("subtraction_2layer_v2", ("sub", 6, 2, 3)),
    ("subtraction_2layer_v3", ("sub", 3, 2, 3)),
    ("subtraction_2layer_v3", ("sub", 4, 2, 3)),
    ("subtraction", ("sub", 6, 3, 4)),
    ("subtraction_2layer", ("sub", 3, 2, 3)),
    ("subtraction_2layer", ("sub", 5, 2, 3)),
    ("subtraction_2layer", ("sub", 6, 2, 3)),
    ("mixed", ("mix", 6, 3, 4)),
    ("mixed_3layer", ("mix", 6, 3, 4)),
    ("mixed_3layer", ("mix", 3, 3, 4)),
    ("mixed_3layer", ("mix", 8, 4, 4)),
    ("mixed_3layer_v2", ("mix", 6, 3, 4)),
    ("mixed_3layer_v2", ("mix", 3, 3, 4)),
    ("mixed_3layer_v2", ("mix", 8, 4, 4)),
    ("negative_control", ("add", 5, 1, 3)),
    ("negative_control", ("add", 6, 2, 3)),
    ("negative_control", ("add", 6, 3, 4)),
]


def spec(name: str) -> Hypothesis:
    return load(SPECS / f"{name}.yaml")


def inst(graph, node_id):
    return graph.nodes[node_id]["instance"]


@pytest.mark.parametrize("name, shape", SHAPES, ids=[f"{n}-{s[0]}_d{s[1]}_l{s[2]}_h{s[3]}" for n, s in SHAPES])
def test_shipped_spec_expands(name, shape):
    h = spec(name)
    s = make_shape(*shape)
    assert applies_to(h, s), applies_to(h, s).reason
    graph = expand(h, s)
    layout = Layout(s.digits)
    assert graph.number_of_nodes() > 0
    for node_id in graph.nodes:
        node = inst(graph, node_id)
        assert node.id == node_id
        assert node.positions and all(0 <= p < layout.n_ctx for p in node.positions)
        assert node.layers and all(0 <= layer < s.n_layers for layer in node.layers)
        assert 1 <= node.max_heads <= s.n_heads
        for a, b in graph.out_edges(node_id):
            assert can_feed(inst(graph, a), inst(graph, b))
    # the shipped files round-trip through YAML
    assert loads(h.to_yaml()) == h


def test_every_shipped_spec_is_tested_and_commented():
    names = {p.stem for p in SPECS.glob("*.yaml")}
    assert names == {n for n, _ in SHAPES}
    for path in SPECS.glob("*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), path
        assert "Transformers" in path.read_text().split("\nname:")[0], f"{path.name} should cite the paper"


def test_applies_to_reasons():
    assert not applies_to(spec("addition_1layer"), make_shape("add", 6, 2, 3))
    assert "layers" in applies_to(spec("addition_1layer"), make_shape("add", 6, 2, 3)).reason
    assert "mix" in applies_to(spec("addition"), make_shape("mix", 6, 3, 4)).reason
    assert not applies_to(spec("mixed"), make_shape("mix", 6, 2, 3))
    with pytest.raises(SpecError, match="does not apply") as err:
        expand(spec("addition"), make_shape("add", 6, 1, 3))
    assert err.value.line is not None and err.value.file.endswith("addition.yaml")


def test_addition_nodes_sit_where_the_paper_puts_them():
    s = make_shape("add", 6, 2, 3)
    layout = Layout(6)
    g = expand(spec("addition"), s)
    sa3 = inst(g, "SA3")
    assert sa3.variables == [("SA", 3)]
    assert sa3.positions == [layout.predicts(3)] and sa3.layers == [0]
    assert sa3.site == "head" and sa3.max_heads == 2
    assert sa3.attends == [([layout.d(3), layout.d_prime(3)], 0.3)]
    assert sa3.impacts_exactly == ["A3"] and sa3.breaks == ["S0"]
    st2 = inst(g, "ST2")
    assert st2.positions == list(range(layout.d_prime(1), layout.sign + 1))  # D'1, D'0, =, sign
    assert st2.impacts_at_least == [] and st2.breaks == []
    sv4 = inst(g, "SV4")
    assert sv4.positions == [layout.predicts(5)] and sv4.layers == [1] and sv4.site == "any"
    # SV(n) reads ST(0..n); there is no SV -> SV edge (SV(n-1) sits at a later token)
    assert {a for a, _ in g.in_edges("SV4")} == {"ST0", "ST1", "ST2", "ST3", "ST4", "SC4"}
    assert not any(a.startswith("SV") and b.startswith("SV") for a, b in g.edges)
    assert g.edges["SC0", "A1"]["required"] is False
    assert g.edges["SA3", "A3"]["required"] is True
    assert inst(g, "A6").positions == [layout.sign]  # the top digit is predicted at the sign token
    assert g.graph["checks"].min_faithfulness == 0.95


def test_mixed_spec_has_polysemantic_nodes_and_selectors():
    g = expand(spec("mixed"), make_shape("mix", 6, 3, 4))
    assert inst(g, "SA3").variables == [("SA", 3), ("MD", 3), ("ND", 3)]
    assert inst(g, "ST0").variables == [("ST", 0), ("MT", 0)]
    assert inst(g, "SA3").breaks == ["S0", "M0"]
    layout = Layout(6)
    opr = inst(g, "OPR2")
    assert opr.attends == [([layout.opr], 0.2)] and opr.layers == [0, 1, 2]
    assert inst(g, "SIGN").impacts_exactly == ["sign"] and inst(g, "SIGN").positions == [layout.equals]
    assert ("OPR2", "A2") in g.edges and ("ST1", "SV3") in g.edges  # included addition edges are kept


def test_negative_control_reads_the_neighbouring_column():
    layout = Layout(6)
    g = expand(spec("negative_control"), make_shape("add", 6, 2, 3))
    sa3 = inst(g, "SA3")
    assert sa3.positions == [layout.predicts(4)]
    assert sa3.impacts_exactly == ["A4"]
    right = inst(expand(spec("addition"), make_shape("add", 6, 2, 3)), "SA3")
    assert sa3.positions != right.positions


# ----------------------------------------------------------------------------- builder


def addition_in_python() -> Hypothesis:
    """specs/addition.yaml written with the fluent builder."""
    both = ["D(n)", "D'(n)"]
    return (
        HypothesisBuilder(
            "addition",
            task="add",
            description="n-digit addition in 2+ layers: layer-0 TriCase (ST) heads at the question tail, Base Add (SA) "
            "heads at each answer token, the carry cascade (SV) in later layers, combined per answer digit.",
        )
        .applies_to(digits="2..", layers="2..", heads="3..")
        .node("SA{n}", "SA(n)", for_each=EACH_DIGIT, site="head", max_heads=2, at="predicts A(n)", layers=0,
              attends=attends(both, 0.3), impacts={"exactly": "A(n)"}, breaks="S0",
              description="Base Add (D_n + D'_n) mod 10, computed where A(n) is predicted")
        .node("ST{n}", "ST(n)", for_each=EACH_DIGIT, site="head", at="D'(1)..sign", layers=0,
              attends=attends(both, 0.3),
              description="TriCase of column n (no carry / uncertain sum 9 / carry), at the question tail")
        .node("SC{n}", "SC(n)", for_each=EACH_DIGIT, site="head", at="predicts A(n+1)", layers=0,
              attends=attends(both, 0.3), required=False,
              description="Carry One out of column n, read again where A(n+1) is predicted")
        .node("SV{n}", "SV(n)", for_each={"n": "1..digits-1"}, site="any", at="predicts A(n+1)", layers="1..last",
              impacts={"at_least": "A(n+1)"}, test={"min_accuracy": 0.8},
              description="cascaded carry out of column n (the TriAdd fold of ST(n) .. ST(0)), used by A(n+1)")
        .node("A{n}", "A(n)", for_each={"n": "0..digits"}, site="any", at="predicts A(n)",
              impacts={"at_least": "A(n)"}, required=False,
              description="answer digit n, (SA(n) + SV(n-1)) mod 10 (A(0) = SA(0)); the top digit is SV(digits-1)")
        .edge("SA{n} -> A{n}", for_each={"n": "0..digits-1"})
        .edge("ST{k} -> SV{n}", for_each={"n": "1..digits-1", "k": "0..n"})
        .edge("SV{n-1} -> A{n}", for_each={"n": "2..digits"})
        .edge("SC{n} -> SV{n}", for_each={"n": "1..digits-1"}, optional=True)
        .edge("SC0 -> A1", optional=True)
        .checks(min_faithfulness=0.95, min_completeness=0.9)
        .build()
    )  # fmt: skip


def test_builder_equals_yaml():
    built = addition_in_python()
    assert built == spec("addition")
    assert built.to_yaml() == spec("addition").to_yaml()
    # Hypothesis.build with plain fields gives the same object too
    again = Hypothesis.build(
        "addition", task="add", description=built.description, applies_to=built.applies_to,
        nodes=built.nodes, edges=built.edges, checks=built.checks,
    )  # fmt: skip
    assert again == built
    # short forms and spacing normalise to one canonical form
    changed = spec("addition").nodes[0].model_copy(update={"layers": ["0"]})
    assert changed == spec("addition").nodes[0]
    a = Hypothesis.build("x", task="add", nodes=[{"id": "SA{ n }", "computes": ["SA( n )"], "for_each": {"n": "0 .. digits - 1"}, "layers": [0]}])
    b = Hypothesis.build("x", task="add", nodes=[{"id": "SA{n}", "computes": "SA(n)", "for_each": {"n": "0..digits-1"}, "layers": 0}])
    assert a == b


def test_builder_errors_are_spec_errors():
    with pytest.raises(SpecError, match="unknown variable 'SQ'") as err:
        HypothesisBuilder("x", task="add").node("SA{n}", "SQ(n)", for_each=EACH_DIGIT).build()
    assert "nodes[0] (SA{n}).computes" in err.value.message
    assert err.value.file is None
    with pytest.raises(SpecError, match="unknown site kind"):
        Hypothesis.build("x", task="add", nodes=[{"id": "X", "computes": "OPR", "site": "heads"}])


# ----------------------------------------------------------------------------- expansion rules


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BASE = """\
name: t
task: add
nodes:
  - id: SA{n}
    for_each: {n: 0..digits-1}
    computes: SA(n)
    at: predicts A(n)
    layers: 0
  - id: C{n}
    for_each: {n: 0..digits}
    computes: A(n)
    site: mlp
    at: predicts A(n)
    layers: last
    test: {keep: [SC(n-1), SA(n)]}
edges:
"""


def test_missing_endpoint_needs_optional(tmp_path):
    shape = make_shape("add", 3, 2, 3)
    strict = BASE + "  - flow: SA{n} -> C{n}\n    for_each: {n: 0..digits}\n"
    with pytest.raises(SpecError, match=r"SA\{n\} -> C\{n\} \(with n=3\): node 'SA3' does not exist") as err:
        expand(loads(strict, file="strict.yaml"), shape)
    assert (err.value.file, err.value.line) == ("strict.yaml", 17)
    assert "optional: true" in err.value.hint
    g = expand(loads(strict + "    optional: true\n"), shape)
    assert sorted(g.edges) == [("SA0", "C0"), ("SA1", "C1"), ("SA2", "C2")]
    assert all(not d["required"] for *_, d in g.edges(data=True))
    # keep drops variables whose column does not exist: SC(-1) at n=0, SA(3) at n=3
    assert g.nodes["C0"]["instance"].keep == [("SA", 0)]
    assert g.nodes["C3"]["instance"].keep == [("SC", 2)]


def test_test_answers_name_the_compared_tokens_and_a_bad_one_its_line():
    shape = make_shape("add", 3, 2, 3)
    text = BASE.split("edges:")[0].replace("    test: {keep: [SC(n-1), SA(n)]}", "    test: {keep: [SC(n-1), SA(n)], answers: [A(n), sign]}")
    assert "answers" in text
    h = loads(text + "edges: []\n", file="answers.yaml")
    assert loads(h.to_yaml()) == h
    g = expand(h, shape)
    assert g.nodes["C0"]["instance"].test_answers == ["sign", "A0"]  # in the layout's answer order
    assert g.nodes["SA0"]["instance"].test_answers is None  # default: every token the sites serve
    with pytest.raises(SpecError) as err:
        expand(loads(text.replace("answers: [A(n), sign]", "answers: [A(n+9)]") + "edges: []\n", file="answers.yaml"), shape)
    assert err.value.file == "answers.yaml" and "answers" in str(err.value)


def test_edge_route_reaches_the_graph_and_a_bad_one_names_its_line():
    shape = make_shape("add", 3, 2, 3)
    text = BASE + "  - flow: SA{n} -> C{n}\n    for_each: {n: 0..digits-1}\n    route: answer\n"
    h = loads(text, file="route.yaml")
    assert loads(h.to_yaml()) == h and h.edges[-1].route == "answer"
    g = expand(h, shape)
    assert {d["route"] for a, b, d in g.edges(data=True) if (a, b) == ("SA0", "C0")} == {"answer"}
    twice = text + "  - flow: SA{n} -> C{n}\n    for_each: {n: 0..digits-1}\n"  # the stricter claim stands
    assert expand(loads(twice), shape).edges["SA0", "C0"]["route"] == "target"
    with pytest.raises(SpecError, match="'target' or 'answer'") as err:
        loads(text.replace("route: answer", "route: around"), file="route.yaml")
    assert (err.value.file, err.value.line) == ("route.yaml", 19)


def test_edge_must_be_realisable_and_acyclic():
    shape = make_shape("add", 3, 2, 3)
    backwards = BASE + "  - C{n} -> SA{n}\n" .replace("C{n} -> SA{n}", "C1 -> SA1")
    with pytest.raises(SpecError, match="cannot carry information") as err:
        expand(loads(backwards, file="b.yaml"), shape)
    assert err.value.line == 17
    cyc = """\
    name: cyc
    task: add
    nodes:
      - {id: X, computes: SA(0), site: any, at: predicts A(0)}
      - {id: Y, computes: SA(0), site: any, at: predicts A(0)}
    edges:
      - X -> Y
      - Y -> X
    """
    with pytest.raises(SpecError, match="cycle: (X -> Y -> X|Y -> X -> Y)"):
        expand(loads(textwrap.dedent(cyc), file="c.yaml"), shape)


def test_edge_between_variables_the_causal_model_does_not_connect_is_rejected():
    """SA(n) feeds A(n) only: an edge from it to the carry is an error at its line, with a hint."""
    shape = make_shape("add", 3, 2, 3)
    text = """\
    name: unconnected
    task: add
    nodes:
      - {id: "X{n}", for_each: {n: 1..digits-1}, computes: SA(n), site: head, at: predicts A(n), layers: 0}
      - {id: "Y{n}", for_each: {n: 1..digits-1}, computes: SV(n), site: mlp, at: predicts A(n), layers: 1}
    edges:
      - flow: X{n} -> Y{n}
        for_each: {n: 1..digits-1}
    """
    with pytest.raises(SpecError, match="X1's SA\\(1\\) cannot change Y1's SV\\(1\\) in the task's causal model") as err:
        expand(loads(textwrap.dedent(text), file="u.yaml"), shape)
    assert err.value.line == 7
    assert "ST(1)" in err.value.hint and "remove it" in err.value.hint
    # connected variables pass: the TriCase feeds the carry, and a node may read a copy of the same variable
    for source in ("ST(n)", "SV(n)"):
        ok = textwrap.dedent(text).replace("computes: SA(n)", f"computes: {source}")
        assert sorted(expand(loads(ok), shape).edges) == [("X1", "Y1"), ("X2", "Y2")]


def test_can_feed_follows_the_transformer():
    assert site_can_feed((5, 0, "head"), (5, 0, "mlp"))  # same position, head then MLP
    assert not site_can_feed((5, 0, "mlp"), (5, 0, "head"))
    assert not site_can_feed((5, 0, "head"), (5, 0, "head"))  # heads of one layer run in parallel
    assert site_can_feed((3, 0, "head"), (5, 1, "head"))  # an attention layer moves it forward
    assert site_can_feed((3, 0, "mlp"), (5, 1, "mlp"))
    assert not site_can_feed((3, 0, "head"), (5, 0, "mlp"))  # no attention after the source
    assert not site_can_feed((5, 0, "head"), (3, 1, "head"))  # never backwards


def test_positions_layers_and_heads_must_fit_the_model():
    shape = make_shape("add", 3, 2, 3)
    cases = {
        "at: D(3)": ("D(3) does not exist with 3 digits", "at: predicts A(n)"),
        "at: P(22)": ("outside the model's context", "at: predicts A(n)"),
        "layers: 2": ("layer 2 is outside the model", "layers: 0"),
        "max_heads: 4": ("exceeds the model's 3 heads", "layers: 0"),
        "computes: SA(n+1)": ("SA(3) does not exist", "computes: SA(n)"),
        "breaks: M1": ("unknown question class 'M1'", "layers: 0"),
    }
    for new, (message, old) in cases.items():
        text = BASE.replace(old, new if old.split(":")[0] == new.split(":")[0] else f"{old}\n    {new}", 1)
        with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
            expand(loads(text, file="p.yaml"), shape)
        assert err.value.file == "p.yaml" and err.value.line is not None and err.value.column is not None


def test_duplicate_expanded_ids():
    text = BASE.replace("id: C{n}", "id: SA{n-1}").replace("for_each: {n: 0..digits}", "for_each: {n: 1..digits}")
    with pytest.raises(SpecError, match="makes id 'SA0', which SA\\{n\\} already made"):
        expand(loads(text), make_shape("add", 3, 2, 3))


# ----------------------------------------------------------------------------- errors with locations


def test_unknown_names_have_location_and_hint(tmp_path):
    text = (SPECS / "addition.yaml").read_text()
    cases = [
        ("computes: SA(n)", "computes: SB(n)", "unknown variable 'SB'", "'SV'"),
        ("site: any", "site: mpl", "unknown site kind 'mpl'", "'mlp'"),
        ("    layers: 0\n", "    layres: 0\n", "unknown field 'layres'", "'layers'"),
        ("breaks: S0", "breaks: S7", "unknown question class 'S7'", "allowed: S0"),
        ("task: add", "task: ad", "unknown task 'ad'", "'add'"),
        ("at: D'(1)..sign", "at: D'(1)..sgn", "unknown position 'sgn'", "'sign'"),
        ("at: D'(1)..sign", "at: D'(m)..sign", "unknown name 'm'", "for_each"),
    ]
    for old, new, message, hint in cases:
        mutated = text.replace(old, new, 1)
        line = text[: text.index(old)].count("\n") + 1
        path = write(tmp_path, "m.yaml", mutated)
        with pytest.raises(SpecError) as err:
            load(path)
        e = err.value
        assert message in e.message, e.render()
        assert hint in (e.hint or ""), e.render()
        assert e.file == str(path) and e.line == line and e.column >= 1, e.render()


def test_includes(tmp_path):
    write(tmp_path, "base.yaml", BASE + "  - SA{n} -> C{n}\n".replace("SA{n} -> C{n}", "SA0 -> C0"))
    write(tmp_path, "top.yaml", """\
        name: top
        task: mix
        include: [base.yaml]
        override:
          - id: SA{n}
            computes: SA(n) | MD(n)
        nodes:
          - {id: O, computes: OPR, at: predicts A(0)}
        edges:
          - O -> C0
        """)
    h = load(tmp_path / "top.yaml")
    assert [n.id for n in h.nodes] == ["SA{n}", "C{n}", "O"]
    assert h.nodes[0].computes == ["SA(n)", "MD(n)"] and h.nodes[0].layers == ["0"]
    assert h.include == [] and h.override == []
    assert loads(h.to_yaml()) == h
    g = expand(h, make_shape("mix", 3, 2, 3))
    assert ("SA0", "C0") in g.edges and ("O", "C0") in g.edges

    bad = {
        "override:\n  - id: SX{n}\n    computes: SA(n)\n": ("override of unknown node 'SX{n}'", 5),
        "nodes:\n  - {id: 'SA{n}', for_each: {n: 0..1}, computes: OPR}\n": ("already defined in base.yaml", 5),
        "include: [missing.yaml]\n": ("included spec file not found", 3),
        "include: [loop.yaml]\n": ("include cycle", 3),
        "override:\n  - id: SA{n}\n    site: mlp\n": ("max_heads", None),
    }
    write(tmp_path, "loop.yaml", "name: loop\ntask: add\ninclude: [loop.yaml]\n")
    for extra, (message, line) in bad.items():
        head = "name: bad\ntask: add\n" + ("include: [base.yaml]\n" if "include" not in extra else "")
        path = write(tmp_path, "bad.yaml", head + extra)
        if "max_heads" in message:  # an override is checked against the node it changes
            path = write(tmp_path, "bad.yaml", head + "override:\n  - id: SA{n}\n    site: mlp\n    max_heads: 2\n")
            message, line = "max_heads applies to heads", 7
        with pytest.raises(SpecError, match=message) as err:
            load(path)
        assert err.value.line == line, err.value.render()
        assert err.value.file is not None


def test_spec_does_not_import_torch():
    code = (
        "import sys\n"
        "import circuitspec.spec, circuitspec.spec.expand, circuitspec.spec.loader, circuitspec.spec.builder\n"
        "from circuitspec.spec import load, expand, make_shape\n"
        f"expand(load({str(SPECS / 'mixed.yaml')!r}), make_shape('mix', 6, 3, 4))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_json_schema_describes_the_language():
    schema = Hypothesis.json_schema()
    node = schema["$defs"]["Node"]
    assert {"id", "computes", "site", "at", "layers", "attends", "impacts", "for_each", "test"} <= set(node["properties"])
    assert node["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "task"}
    # short forms are allowed by the schema: at may be a string or a list
    at = node["properties"]["at"]["anyOf"]
    assert {"type": "string"} in at


def test_explains_names_the_claimed_classes():
    h = spec("addition_1layer")
    assert h.explains == ["S0", "S1", "S2"]
    assert expand(h, make_shape("add", 5, 1, 3)).graph["explains"] == ["S0", "S1", "S2"]
    with pytest.raises(SpecError, match="unknown question class 'S9'"):
        loads("name: x\ntask: add\nexplains: [S0, S9]\n")
