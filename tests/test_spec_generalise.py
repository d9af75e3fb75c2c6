"""Patterns, the writer and patches, without a model: findings in, YAML that loads out.

Findings that differ only in their column become one for_each template (through an alias where a
variable goes by several names), a lone column an explicit node; ids never collide; what the
writer writes loads with the project's loader; a patch adds items to a user's block lists (or adds
the list), keeps the rest of the file, and refuses flow-style lists with a located error.
"""

from __future__ import annotations

import pytest

from circuitspec.errors import SpecError
from circuitspec.spec import expand, loads, make_shape
from circuitspec.spec.generalise import Finding, NodeDraft, drafts, name_patterns, patterns
from circuitspec.spec.patch import patched_text
from circuitspec.spec.writer import EdgeDraft, document
from circuitspec.tasks.layout import Layout

LAY = Layout(5)


def _head(position: int, key) -> Finding:
    return Finding(f"P{position}.L0.H1", "head", 1, 0, position, ((key,),), "evidence")


def _nodes(findings, taken=frozenset()):
    pats = patterns(findings, LAY)
    name_patterns(pats, taken=set(taken))
    return [d for p in pats for d in drafts(p, LAY)]


def test_a_column_pattern_is_one_template_and_an_alias_joins_it():
    sa = [_head(LAY.predicts(n), ("SA", n)) for n in range(1, 5)]
    a0 = Finding("P17.L0.H1", "head", 1, 0, LAY.predicts(0), ((("A", 0), ("SA", 0)),), "A(0)=SA(0)")
    (node,) = _nodes([*sa, a0])
    assert (node.id, node.computes, node.at, node.for_each) == ("SA{n}", "SA(n)", "predicts A(n)", "0..digits-1")
    assert [site for _, site in node.members] == ["P17.L0.H1", "P16.L0.H1", "P15.L0.H1", "P14.L0.H1", "P13.L0.H1"]


def test_a_lone_column_is_explicit_and_ids_never_collide():
    found = [_head(LAY.predicts(2), ("SA", 2)), _head(LAY.predicts(3), ("SA", 3)),
             Finding("P15.L0.MLP", "mlp", 1, 0, LAY.predicts(2), ((("SA", 2),),))]
    nodes = _nodes(found, taken={"SA3"})
    ids = [nid for d in nodes for nid, _ in d.members]
    assert len(ids) == len(set(ids)) and "SA3" not in ids
    heads, mlp = sorted(nodes, key=lambda d: d.site)
    assert (heads.id, heads.for_each) == ("SA_head{n}", "2..3")  # SA3 is taken: the kind is added
    assert (mlp.id, mlp.computes, mlp.at, mlp.for_each) == ("SA2", "SA(2)", "predicts A(2)", None)


def test_what_the_writer_writes_loads_and_expands():
    nodes = _nodes([_head(LAY.predicts(n), ("SA", n)) for n in range(5)]) + [
        NodeDraft(id="A{n}", computes="A(n)", site="mlp", at="predicts A(n)", layers=0, for_each="0..digits-1", evidence=("why",)),
        NodeDraft(id="X", computes="SV(0)", site="head", at="predicts A(1)", layers=0, max_heads=2),
    ]
    edges = [EdgeDraft("SA{n} -> A{n}", for_each="0..digits-1", evidence=("edge why",)), EdgeDraft("X -> A1", optional=True)]
    text = document(header=["a header"], name="t", description="d: with a colon", task="add", applies_to={"digits": 5, "layers": 1, "heads": "3.."},
                    nodes=nodes, edges=edges, checks={"min_faithfulness": 0.9}, footer=["left out"])
    h = loads(text)
    assert loads(h.to_yaml()) == h and h.description == "d: with a colon"
    assert "  # why\n  - id: A{n}" in text and text.startswith("# a header\n") and text.endswith("# left out\n")
    g = expand(h, make_shape("add", 5, 1, 3))
    assert ("SA2", "A2") in g.edges and g.nodes["X"]["instance"].max_heads == 2 and not g.edges["X", "A1"]["required"]


USER = """# my spec
name: mine
task: add
nodes:
  - id: SA{n}   # base add
    for_each: {n: 0..digits-1}
    computes: SA(n)
    at: predicts A(n)

# the checks
checks: {min_faithfulness: 0.9}
"""


def test_a_patch_adds_items_to_the_lists_and_keeps_the_rest():
    node = NodeDraft(id="ST3", computes="ST(3)", site="head", at="predicts A(5)", layers=0, evidence=("P12.L0.H2: ST(3)",))
    new = patched_text(USER, "mine.yaml", [node], [EdgeDraft("SA3 -> ST3")], notes=["proposed"])
    assert new.startswith(USER.split("\n# the checks")[0].rstrip("\n"))  # the user's lines, untouched, come first
    assert "  - id: ST3\n" in new and "\nedges:\n  - flow: SA3 -> ST3\n" in new
    h = loads(new)
    assert [n.id for n in h.nodes] == ["SA{n}", "ST3"] and h.checks.min_faithfulness == 0.9


def test_a_flow_style_list_is_refused_where_it_is():
    text = "name: x\ntask: add\nnodes: [{id: SA0, computes: SA(0)}]\n"
    with pytest.raises(SpecError, match="flow-style") as err:
        patched_text(text, "x.yaml", [NodeDraft(id="B", computes="SA(1)", site="head", at="=", layers=0)], [])
    assert (err.value.file, err.value.line) == ("x.yaml", 3)
