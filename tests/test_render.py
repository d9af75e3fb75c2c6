"""Renderers draw exactly what a verdict says: node maps, graphs, matrix, JUnit, table, HTML.

Every picture but the optional graphviz layout is written by the project, so these tests run
without graphviz's ``dot``; the few that check the graphviz layout skip, saying so, where ``dot``
does not work.

The verdicts here are built by hand in the shape the verifier produces for the paper's 6-digit
addition model (SA at the answer positions in layer 0, ST at the question tail, SV in layer 1,
MLP nodes for the answer digits), including unconfirmed and unplaced nodes, shared cells, neuron
sets and useful sites no node explains.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
import xml.etree.ElementTree as ET

import pytest

from circuitspec.engine.sites import Site
from circuitspec.render import nodemap
from circuitspec.atomic import atomic_write
from circuitspec.render.files import dot_available, dot_svg, slug
from circuitspec.render.style import STATUS_FILL, UNUSED_FILL, USEFUL_FILL, site_label
from circuitspec.tasks.layout import Layout
from circuitspec.verify.verdict import (
    PlacementEvidence,
    CircuitMetrics,
    Estimate,
    ModelLayout,
    NodeVerdict,
    Report,
    VariableTest,
    Verdict,
)

SVG_NS = {"svg": "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(not dot_available(), reason="graphviz's 'dot' is not installed (or does not run): the graphviz layout is optional")


def _est(value: float, n: int = 400, width: float = 0.03) -> Estimate:
    return Estimate(value=value, low=max(0.0, value - width), high=min(1.0, value + width), n=n, method="wilson")


def _test(var: str, acc: float, example: str | None = None) -> VariableTest:
    return VariableTest(variable=var, accuracy=_est(acc), changed=_est(min(1.0, acc + 0.01)), pairs=400, example=example)


def model_layout(op: str = "add", digits: int = 6, n_layers: int = 2, n_heads: int = 3) -> ModelLayout:
    lay = Layout(digits)
    return ModelLayout(
        op=op,
        digits=digits,
        n_layers=n_layers,
        n_heads=n_heads,
        n_ctx=lay.n_ctx,
        position_labels=[lay.label(p) for p in range(lay.n_ctx)],
    )


def make_verdict(
    model: str = "add_d6_l2_h3_t15K_s372001",
    hypothesis: str = "addition",
    *,
    digits: int = 6,
    variant: int = 0,
    seed: int = 0,
    failing: bool = True,
) -> Verdict:
    """A verdict shaped like the verifier's for the paper's addition hypothesis.

    ``variant`` moves a few heads around (as different seeds of a model do); ``failing`` leaves SV
    of the second-highest column unplaced and the highest unconfirmed, so the hypothesis fails.
    """
    lay = Layout(digits)
    nodes: list[NodeVerdict] = []
    edges: list[tuple[str, str]] = []
    useful: set[str] = set()
    h = variant % 3
    for n in range(digits):
        p = lay.predicts(n)
        sites = [f"P{p}.L0.H{h}", f"P{p}.L0.H{(h + 1) % 3}"] if n % 2 == 0 else [f"P{p}.L0.H{h}"]
        nodes.append(NodeVerdict(node=f"SA{n}", variables=[f"SA({n})"], required=True, status="confirmed", sites=sites,
                                 tests=[_test(f"SA({n})", 0.97 + 0.005 * (n % 3))], candidates_considered=6))
    tail = [lay.d_prime(1), lay.d_prime(0), lay.equals, lay.sign]
    for n in range(digits - 1):
        p = tail[min(n, 3)] if n < 4 else tail[3]
        head = (n + variant) % 3 if n < 4 else (h + 2) % 3
        nodes.append(NodeVerdict(node=f"ST{n}", variables=[f"ST({n})"], required=True, status="confirmed",
                                 sites=[f"P{p}.L0.H{head}"], tests=[_test(f"ST({n})", 0.95)], candidates_considered=9))
    for n in range(1, digits - 1):
        p = lay.predicts(n + 1)
        node = f"SV{n}"
        if failing and n == digits - 3:
            nodes.append(NodeVerdict(node=node, variables=[f"SV({n})"], required=True, status="not_placed",
                                     reason="failed_causal_test", detail="best candidate P15.L1.H0 reached 0.41",
                                     runner_up=PlacementEvidence(sites=["P15.L1.H0"], score=0.41, passed=False,
                                                         tests=[_test(f"SV({n})", 0.41, "133357+182243=+0315600")]),
                                     candidates_considered=4))
        elif failing and n == digits - 2:
            nodes.append(NodeVerdict(node=node, variables=[f"SV({n})"], required=True, status="unconfirmed",
                                     sites=[f"P{p}.L1.H{variant % 3}"], tests=[_test(f"SV({n})", 0.72)],
                                     detail="interchange accuracy 0.72 below 0.9", candidates_considered=3))
        else:
            nodes.append(NodeVerdict(node=node, variables=[f"SV({n})"], required=True, status="confirmed",
                                     sites=[f"P{p}.L1.H{(n + variant) % 3}"], tests=[_test(f"SV({n})", 0.93)]))
        edges.append((f"ST{n}", node))
        edges.append((f"SV{n - 1}" if n > 1 else "ST0", node))
    for n in range(digits):
        p = lay.predicts(n)
        sites = [f"P{p}.L1.N[{3 * n + variant},{100 + n},{907 - n}]"] if n == 2 else [f"P{p}.L1.MLP"]
        nodes.append(NodeVerdict(node=f"A{n}", variables=[f"A({n})"], required=True, status="confirmed", sites=sites,
                                 tests=[_test(f"A({n})", 0.99)]))
        edges.append((f"SA{n}", f"A{n}"))
        if n >= 2:
            edges.append((f"SV{n - 1}", f"A{n}"))
        elif n == 1:
            edges.append(("ST0", "A1"))
    # optional Carry One node sharing a cell with ST1 (a polysemantic head), and an unplaced optional one
    nodes.append(NodeVerdict(node="SC1", variables=["SC(1)"], required=False, status="confirmed",
                             sites=[next(n for n in nodes if n.node == "ST1").sites[0]], tests=[_test("SC(1)", 0.91)]))
    nodes.append(NodeVerdict(node="SC0", variables=["SC(0)"], required=False, status="not_placed", reason="no_candidate"))
    for nv in nodes:
        for s in nv.sites:
            site = Site.parse(s)
            useful.add(f"P{site.position}.L{site.layer}.MLP" if site.kind == "neurons" else s)
    # useful sites no node explains
    useful |= {f"P{lay.d(0)}.L0.H0", f"P{lay.equals}.L1.MLP", f"P{lay.predicts(digits)}.L1.H2"}
    status = "fails" if failing else "holds"
    summary = (f"SV{digits - 3} could not be placed; SV{digits - 2} unconfirmed" if failing
               else "every required node confirmed")
    return Verdict(
        hypothesis=hypothesis,
        model=model,
        layout=model_layout(digits=digits),
        edges=sorted(set(edges)),
        status=status,
        summary=summary,
        nodes=nodes,
        metrics=CircuitMetrics(faithfulness=_est(0.962 - 0.01 * variant, n=1000, width=0.012),
                               completeness=_est(0.04, n=1000, width=0.01),
                               minimality={"SA0": 0.31, "ST0": 0.12}, clean_accuracy=_est(1.0, n=1000, width=0.004)),
        useful_sites=sorted(useful, key=lambda s: Site.parse(s)),
        seed=seed,
        settings={"pairs": 400, "threshold": 0.9},
    )


# --------------------------------------------------------------------------- site labels


def test_site_label_joins_colocated_heads_like_the_paper():
    assert site_label(["P16.L0.H2", "P16.L0.H1"]) == "P16.L0.H1+H2"
    assert site_label(["P17.L1.MLP", "P16.L0.H1", "P16.L1.H0"]) == "P16.L0.H1 P16.L1.H0 P17.L1.MLP"
    assert site_label(["P16.L1.N[907,12]"]) == "P16.L1.N[12,907]"
    assert site_label(["P3.L0.N[1,2,3,4,5,6]"]) == "P3.L0.N[1,2,3,4,..+2]"
    assert site_label([]) == ""


def test_slug_is_file_safe():
    assert slug("add ition/../x") == "add-ition-..-x"
    assert slug("add_d6_l2_h3_t15K_s372001") == "add_d6_l2_h3_t15K_s372001"
    assert "/" not in slug("../../etc")


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a" / "f.txt"
    atomic_write(p, "one")
    atomic_write(p, b"two")
    assert p.read_text() == "two"
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]  # no temp file left behind


# --------------------------------------------------------------------------- node map (data)


def test_node_map_places_every_node_in_the_cells_of_its_sites():
    v = make_verdict()
    m = nodemap.node_map(v)
    for node in v.nodes:
        for s in node.sites:
            cell = m.cell(s)
            assert cell.kind == "node" and node.node in cell.nodes, (node.node, s)
    # neurons draw in the MLP row of their layer and carry their indices
    a2 = v.node("A2")
    cell = m.cell(a2.sites[0])
    assert cell.row.kind == "mlp" and cell.neurons["A2"] == Site.parse(a2.sites[0]).neurons
    # the shared cell names both nodes
    shared = m.cell(v.node("SC1").sites[0])
    assert set(shared.nodes) == {"ST1", "SC1"}


def test_node_map_cells_are_node_useful_or_unused_exactly_as_the_verdict_says():
    v = make_verdict()
    m = nodemap.node_map(v)
    placed_cells = {(m.cell(s).row, m.cell(s).position) for n in v.nodes for s in n.sites}
    useful_cells = {(m.cell(s).row, m.cell(s).position) for s in v.useful_sites}
    for key, cell in m.cells.items():
        if key in placed_cells:
            assert cell.kind == "node"
        elif key in useful_cells:
            assert cell.kind == "useful" and cell.fill == USEFUL_FILL
        else:
            assert cell.kind == "unused" and cell.fill == UNUSED_FILL and not cell.nodes
    assert len(m.cells_of("useful")) == 3  # the three sites no node explains
    assert [n for n, _ in m.not_placed] == ["SV3"]
    assert [n for n, _ in m.optional_not_placed] == ["SC0"]
    # rows: 3 heads + MLP per layer; columns: every position
    assert [r.label for r in m.rows] == ["L0.H0", "L0.H1", "L0.H2", "L0.MLP", "L1.H0", "L1.H1", "L1.H2", "L1.MLP"]
    assert len(m.cells) == 8 * 22


def test_node_map_colours_cells_by_the_worst_status_in_them():
    v = make_verdict()
    m = nodemap.node_map(v)
    assert m.cell(v.node("SV4").sites[0]).fill == STATUS_FILL["unconfirmed"]
    assert m.cell(v.node("SA0").sites[0]).fill == STATUS_FILL["confirmed"]


def test_node_map_rejects_a_site_outside_the_layout():
    v = make_verdict()
    bad = v.model_copy(update={"useful_sites": ["P40.L0.H0"]})
    with pytest.raises(ValueError, match="outside the model layout"):
        nodemap.node_map(bad)


# --------------------------------------------------------------------------- node map (SVG written by the project)


def _svg_cells(svg_bytes: bytes) -> dict[str, dict]:
    """id -> {fill, text, title} for every node-map cell of an SVG from ``node_map_svg``."""
    root = ET.fromstring(svg_bytes)
    out = {}
    for g in root.iter(f"{SVG}g"):
        gid = g.get("id", "")
        if not gid.startswith("cell_"):
            continue
        texts = [t.text or "" for t in g.findall("svg:text", SVG_NS)]
        out[gid] = {
            "fill": g.find("svg:rect", SVG_NS).get("fill"),
            "text": [t.strip() for t in texts if t.strip()],
            "title": g.find("svg:title", SVG_NS).text,
        }
    return out


def test_node_map_svg_shows_what_the_verdict_says():
    v = make_verdict()
    data = nodemap.node_map_svg(v)
    assert b"graphviz" not in data  # written by the project, no layout engine
    cells = _svg_cells(data)
    lay = v.layout
    assert len(cells) == (lay.n_heads + 1) * lay.n_layers * lay.n_ctx
    placed_ids = set()
    for node in v.nodes:
        for s in node.sites:
            site = Site.parse(s)
            row = f"L{site.layer}_H{site.head}" if site.kind == "head" else f"L{site.layer}_MLP"
            cid = f"cell_{row}_P{site.position}"
            placed_ids.add(cid)
            texts = " ".join(cells[cid]["text"])
            assert re.search(rf"(^|\s){re.escape(node.node)}(\s|$)", texts), (node.node, cid, texts)
            assert node.node in cells[cid]["title"] and lay.position_labels[site.position] in cells[cid]["title"]
    useful_ids = set()
    for s in v.useful_sites:
        site = Site.parse(s)
        row = f"L{site.layer}_H{site.head}" if site.kind == "head" else f"L{site.layer}_MLP"
        useful_ids.add(f"cell_{row}_P{site.position}")
    for cid, c in cells.items():
        if cid in placed_ids:
            assert c["fill"] in {STATUS_FILL["confirmed"], STATUS_FILL["unconfirmed"]}
        elif cid in useful_ids:
            assert c["fill"] == USEFUL_FILL and c["text"] == [nodemap.USEFUL_TEXT]
        else:
            assert c["fill"] == UNUSED_FILL and c["text"] == [], cid
    # column headers are the paper's labels, in order, left to right
    root = ET.fromstring(data)
    text = [t.text for t in root.iter(f"{SVG}text")]
    assert "D'0" in text and "OPR" in text and "=" in text and "A7" in text
    xs = {t.text: float(t.get("x")) for t in root.iter(f"{SVG}text") if t.text in ("D5", "OPR", "=", "A0")}
    assert xs["D5"] < xs["OPR"] < xs["="] < xs["A0"]
    # a cell lies in its position's column and its row's band
    rect = {g.get("id"): g.find("svg:rect", SVG_NS) for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("cell_")}
    assert float(rect["cell_L0_H0_P3"].get("x")) < float(rect["cell_L0_H0_P4"].get("x"))
    assert float(rect["cell_L0_H0_P3"].get("y")) < float(rect["cell_L1_MLP_P3"].get("y"))
    # the unplaced nodes are named under the map
    assert any("SV3" in t and "not placed" in t for t in text)


# --------------------------------------------------------------------------- graph, matrix, junit, table


def _report(*verdicts) -> Report:
    return Report(verdicts=list(verdicts), circuitspec_version="0.1.0", seed=0)


def _graph_nodes(root) -> dict[str, tuple[str, str]]:
    """title -> (fill, text) of every node group of a graph SVG (grid style or graphviz's)."""
    nodes = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node":
            shape = next(e for e in g.iter() if e.tag in (f"{SVG}rect", f"{SVG}path", f"{SVG}polygon") and e.get("fill") not in (None, "none"))
            nodes[g.find("svg:title", SVG_NS).text] = (shape.get("fill"), " ".join(t.text or "" for t in g.iter(f"{SVG}text")))
    return nodes


@pytest.mark.parametrize("style", ["grid", pytest.param("dot", marks=needs_dot)])
def test_verdict_graph_labels_each_node_with_its_sites_and_colours_it_by_status(style):
    from circuitspec.render.graph import parse_variable, verdict_svg

    v = make_verdict()
    data = verdict_svg(v, style=style)
    assert (b"Generated by graphviz" in data) == (style == "dot")
    root = ET.fromstring(data)
    nodes = _graph_nodes(root)
    assert set(nodes) == {n.node for n in v.nodes}
    for n in v.nodes:
        fill, text = nodes[n.node]
        assert fill == STATUS_FILL[n.status], n.node
        if n.status != "not_placed":
            assert site_label(n.sites) in text, (n.node, text)
    assert "P18.L0.H0+H1" in nodes["SA2"][1]
    assert "NOT PLACED" in nodes["SV3"][1]
    edges = [g.find("svg:title", SVG_NS).text for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert sorted(e.replace("&#45;&gt;", "->") for e in edges) == sorted(f"{a}->{b}" for a, b in v.edges)
    assert parse_variable("SA(3)") == ("SA", 3) and parse_variable("OPR") == ("OPR", None) and parse_variable("ST12") == ("ST", 12)


def test_edges_show_their_path_patching_status_in_every_view():
    from circuitspec.render.graph import verdict_svg
    from circuitspec.render.html import PairFiles, index_html
    from circuitspec.render.junit import junit_xml
    from circuitspec.render.style import EDGE_STROKE
    from circuitspec.verify.verdict import EdgeVerdict

    v = make_verdict()
    acc = Estimate(value=0.31, low=0.25, high=0.37, n=200, method="wilson")
    results = [
        EdgeVerdict(source=a, target=b, required=True, status="confirmed" if a.startswith("SA") else "failed",
                    accuracy=acc, pairs=200, example=None if a.startswith("SA") else "base 1+1= source 2+1=: predicted 3, model gave 2")
        for a, b in v.edges
    ]
    v = v.model_copy(update={"edge_results": results})
    root = ET.fromstring(verdict_svg(v))
    strokes = {g.get("title") or g.find("svg:title", SVG_NS).text: g.find("svg:path", SVG_NS).get("stroke")
               for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}
    assert strokes["SA0->A0: confirmed"] == EDGE_STROKE["confirmed"]
    assert strokes["ST1->SV1: failed"] == EDGE_STROKE["failed"]
    failing = [e for e in results if e.status == "failed"]
    case = ET.fromstring(junit_xml([v])).find(".//testcase")
    assert f"edge {failing[0].source} -> {failing[0].target} failed" in case.find("failure").text and "model gave 2" in case.find("failure").text
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["edges_confirmed"] == f"{len(results) - len(failing)}/{len(results)}"
    page = index_html(Report(verdicts=[v], circuitspec_version="t", seed=0), {(v.hypothesis, v.model): PairFiles("g.svg", "n.svg")}, {v.hypothesis: "m.svg"})
    assert "evidence for every edge" in page and "Required edges not confirmed" in page


def test_grid_graph_places_nodes_by_position_across_and_sub_layer_up():
    from circuitspec.render.graph import verdict_svg
    from circuitspec.render.grid import row_label

    v = make_verdict()
    root = ET.fromstring(verdict_svg(v))
    box = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node":
            r = g.find("svg:rect", SVG_NS)
            x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
            box[g.find("svg:title", SVG_NS).text] = (x + w / 2, y + h / 2)
    # across: the SA nodes sit left to right in the order of the positions they are placed at
    sa = sorted((Site.parse(v.node(f"SA{n}").sites[0]).position, box[f"SA{n}"][0]) for n in range(6))
    assert [x for _, x in sa] == sorted(x for _, x in sa)
    # up: layer-0 heads below layer-1 heads below layer-1 MLPs (SVG y grows downwards)
    assert box["SA0"][1] > box["SV1"][1] > box["A0"][1]
    assert box["ST0"][1] == box["SA5"][1]  # one row per sub-layer
    # nodes at one position share its column
    assert abs(box["SA5"][0] - box["SV4"][0]) < 1 and abs(box["A5"][0] - box["SA5"][0]) < 1
    # a node with no site at all (SC0: not placed, no runner-up) is in the band on top
    assert box["SC0"][1] < min(y for k, (_, y) in box.items() if k != "SC0")
    assert [row_label(r) for r in [(0,), (1,), (2, 3), (0, 1, 2, 3)]] == ["L0 attn", "L0 MLP", "L1", "L0..L1"]


def test_the_gap_reports_sites_are_outlined_boxes_at_their_grid_places_in_both_graph_styles():
    from circuitspec.render.graph import verdict_graph, verdict_svg
    from circuitspec.render.style import GAP_LEGEND, GAP_STROKE
    from circuitspec.verify.verdict import GapReport, SiteRepair

    lay = Layout(6)
    heads, mlp = [f"P{lay.d(0)}.L0.H0", f"P{lay.d(0)}.L0.H1"], f"P{lay.equals}.L1.MLP"
    steps = [SiteRepair(sites=heads, faithfulness=0.6, restores=0.3, tokens_restored=0.2),
             SiteRepair(sites=[mlp], faithfulness=0.92, restores=0.32, tokens_restored=0.1)]
    plain = make_verdict()
    v = plain.model_copy(update={"gap": GapReport(threshold=0.9, faithfulness=0.3, questions=500, smallest_set=steps, reached=True)})

    def drawn(verdict):
        root = ET.fromstring(verdict_svg(verdict))
        boxes = {}
        for g in root.iter(f"{SVG}g"):
            if g.get("class") in ("node", "gap"):
                r = g.find("svg:rect", SVG_NS)
                x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
                boxes[(g.get("class"), g.find("svg:title", SVG_NS).text.split(":")[0])] = (x + w / 2, y + h / 2, r.get("stroke"))
        return boxes, [t.text for t in root.iter(f"{SVG}text")]

    boxes, text = drawn(v)
    gaps = {k[1]: b for k, b in boxes.items() if k[0] == "gap"}
    nodes = {k[1]: b for k, b in boxes.items() if k[0] == "node"}
    assert set(gaps) == {f"P{lay.d(0)}.L0.H0+H1", mlp}  # one box per place, co-located heads together
    assert {b[2] for b in gaps.values()} == {GAP_STROKE} and GAP_STROKE not in {b[2] for b in nodes.values()}
    assert abs(gaps[f"P{lay.d(0)}.L0.H0+H1"][1] - nodes["SA0"][1]) < 1  # layer-0 heads' row
    assert abs(gaps[mlp][1] - nodes["A0"][1]) < 1 and abs(gaps[mlp][0] - nodes["ST2"][0]) < 1  # L1 MLP row, the '=' column
    assert GAP_LEGEND in text and set(nodes) == {n.node for n in v.nodes}
    source = verdict_graph(v).source
    assert GAP_LEGEND in source and f'"{mlp}" [label="{mlp}\ngap report"' in source and GAP_STROKE in source
    boxes, text = drawn(plain)  # no gap report: nothing extra
    assert all(k[0] == "node" for k in boxes) and GAP_LEGEND not in text
    assert "gap report" not in verdict_graph(plain).source


def test_dot_probe_survives_a_missing_a_non_executable_and_a_broken_dot(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    monkeypatch.setenv("PATH", str(fake))  # nothing else on PATH
    assert not dot_available()
    (fake / "dot").write_text("#!/bin/sh\necho 'dot - graphviz version 2.43.0' >&2\n")  # not executable
    assert not dot_available()
    (fake / "dot").write_text("#!/bin/sh\necho 'segfault' >&2\nexit 139\n")
    (fake / "dot").chmod(0o755)
    assert not dot_available()
    (fake / "dot").write_bytes(b"\x7fELF\x00garbage")  # executable, not a program
    assert not dot_available()
    from circuitspec.errors import CircuitSpecError
    from circuitspec.render.graph import verdict_graph

    with pytest.raises(CircuitSpecError, match="dot"):
        dot_svg(verdict_graph(make_verdict()))


def test_matrix_lists_sites_per_model_and_marks_missing_and_unplaced_nodes():
    from circuitspec.render.matrix import MISSING, NOT_PLACED, matrix, matrix_svg, merge_orders

    a = make_verdict("add_d6_l2_h3_t15K_s372001")
    b = make_verdict("add_d5_l2_h3_t15K_s372001", digits=5, variant=1, failing=False)
    m = matrix([a, b], "addition")
    assert m.models == ["add_d5_l2_h3_t15K_s372001", "add_d6_l2_h3_t15K_s372001"]
    assert m.nodes[:6] == ["SA0", "SA1", "SA2", "SA3", "SA4", "SA5"]  # SA5 (6 digits only) sits after SA4
    assert m.cells[("SA5", "add_d5_l2_h3_t15K_s372001")].text == MISSING
    assert m.cells[("SV3", "add_d6_l2_h3_t15K_s372001")].text == NOT_PLACED
    assert m.cells[("SA2", "add_d6_l2_h3_t15K_s372001")].text == site_label(a.node("SA2").sites)
    assert m.cells[("SV4", "add_d6_l2_h3_t15K_s372001")].fill == STATUS_FILL["unconfirmed"]
    text = " ".join(t.text or "" for t in ET.fromstring(matrix_svg(m)).iter(f"{SVG}text"))
    assert "P18.L0.H0+H1" in text and NOT_PLACED in text
    assert merge_orders([["a", "c"], ["a", "b", "c"], ["z", "a"]]) == ["z", "a", "b", "c"]
    with pytest.raises(ValueError):
        matrix([a], "nothing")


def test_junit_has_one_case_per_pair_and_failures_name_the_failing_nodes():
    from circuitspec.render.junit import junit_xml

    a = make_verdict("m1")
    b = make_verdict("m2", failing=False)
    c = make_verdict("m1", hypothesis="other", failing=False).model_copy(update={"status": "inconclusive", "summary": "too few pairs"})
    root = ET.fromstring(junit_xml(_report(a, b, c)))
    assert root.get("tests") == "3" and root.get("failures") == "2"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"addition", "other"} and suites["addition"].get("tests") == "2"
    cases = {(x.get("classname"), x.get("name")): x for x in root.iter("testcase")}
    assert set(cases) == {("circuitspec.addition", "m1"), ("circuitspec.addition", "m2"), ("circuitspec.other", "m1")}
    fail = cases[("circuitspec.addition", "m1")].find("failure")
    assert fail.get("type") == "fails" and "SV3" in fail.get("message") and "SV4" in fail.get("message")
    assert "failed the causal test" in fail.text and "P15.L1.H0" in fail.text and "133357+182243=+0315600" in fail.text
    assert cases[("circuitspec.addition", "m2")].find("failure") is None
    assert cases[("circuitspec.other", "m1")].find("failure").get("type") == "inconclusive"
    assert junit_xml(_report(a, b, c)) == junit_xml(_report(a, b, c))


def test_table_rows_show_verdict_counts_faithfulness_and_worst_node():
    from rich.console import Console

    from circuitspec.render.table import rows, verdict_table

    a, b = make_verdict("m1"), make_verdict("m2", failing=False)
    r = rows([a, b])
    assert r[0][:4] == ("addition", "m1", "fails", "20/21 (1 unconfirmed)")
    assert r[0][4] == "-"  # no edge tests in these verdicts
    assert r[0][5] == "0.96 [0.95, 0.97]"
    assert r[0][6] == "SV3: not placed (failed causal test)"
    assert r[1][2:4] == ("holds", "21/21") and r[1][6].startswith("SC1: confirmed acc 0.91")
    console = Console(width=200, record=True)
    console.print(verdict_table([a, b]))
    text = console.export_text()
    assert "SV3: not placed" in text and "fails" in text and "holds" in text


# --------------------------------------------------------------------------- whole report


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [(k, v) for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]


@pytest.mark.parametrize("dot", [False, pytest.param(True, marks=needs_dot)], ids=["without-dot", "with-dot"])
def test_write_report_links_resolve_and_render_round_trips(tmp_path, dot):
    from circuitspec.render.report import load_report, report_json, write_report

    a = make_verdict("add_d6_l2_h3_t15K_s372001", hypothesis="add / carry")  # needs a file-safe name
    b = make_verdict("add_d6_l2_h3_t15K_s372001", hypothesis="add - carry", failing=False)  # same slug
    rep = _report(a, b)
    written = write_report(rep, tmp_path / "r", dot=dot)
    assert written.graphs[("add / carry", a.model)] != written.graphs[("add - carry", b.model)]
    page = written.index_html.read_text()
    parser = _Refs()
    parser.feed(page)
    srcs = [v for k, v in parser.refs if k == "src"]
    assert len(srcs) == 4  # node map + graph per pair
    for _, ref in parser.refs:
        assert not ref.startswith(("/", "file:", "http")), ref
        assert (tmp_path / "r" / ref).is_file(), ref
    assert load_report(written.report_json) == rep
    assert written.report_json.read_bytes() == report_json(rep)
    # the DOT source is kept either way; the graphviz layout only where dot works
    for src in written.graph_sources.values():
        assert src.read_text().startswith("digraph") and src.name.endswith(".gv")
    assert len(written.dot_graphs) == (2 if dot else 0)
    assert ("graphviz layout" in page) == dot and page.count("DOT source") == 2
    for f in written.dot_graphs.values():
        assert b"Generated by graphviz" in f.read_bytes()
    # the page names the failing nodes with their reasons
    assert "SV3 not placed" in page and "its candidates failed the causal test" in page
    # nothing but the report's files (no temp files left)
    assert not [p for p in (tmp_path / "r").rglob(".*")]


def test_write_report_without_dot_on_path_is_complete_and_the_page_escapes_names(tmp_path, monkeypatch):
    from circuitspec.render.report import write_report

    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "dot").write_text("#!/bin/sh\nexit 1\n")
    (broken / "dot").chmod(0o644)  # a non-executable dot first on PATH, nothing after it
    monkeypatch.setenv("PATH", str(broken))
    a = make_verdict("m<1>&co")
    b = make_verdict("m2", failing=False)
    written = write_report(_report(a, b), tmp_path / "r")  # asks dot_available() itself
    assert not written.dot_graphs
    files = sorted(str(p.relative_to(tmp_path / "r")) for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert len([f for f in files if f.endswith(".svg")]) == 2 * 2 + 1 and len([f for f in files if f.endswith(".gv")]) == 2
    page = written.index_html.read_text()
    assert "m&lt;1&gt;&amp;co" in page and "m<1>" not in page
    from circuitspec.render.html import anchor

    for v in (a, b):  # every verdict has its section, its node map and its graph on the page
        assert f'id="{anchor(v)}"' in page
        assert escape(f"node map: addition on {v.model}") in page and escape(f"hypothesis graph with sites: addition on {v.model}") in page
    for f in written.graphs.values():
        assert ET.parse(f).getroot().tag == f"{SVG}svg"


def test_load_report_errors_name_the_file(tmp_path):
    from circuitspec.errors import CircuitSpecError
    from circuitspec.render.report import load_report

    with pytest.raises(CircuitSpecError, match="no report"):
        load_report(tmp_path / "missing.json")
    bad = tmp_path / "report.json"
    bad.write_text('{"verdicts": [], "seed": 0}')
    with pytest.raises(CircuitSpecError, match="not a circuitspec report") as err:
        load_report(tmp_path)
    assert err.value.file == str(bad)
    bad.write_text("{not json")
    with pytest.raises(CircuitSpecError, match="not a circuitspec report"):
        load_report(bad)


def test_node_map_of_a_planted_model_shows_exactly_the_planted_layout():
    """A verdict that places every node of a planted model on its true sites draws exactly that layout."""
    from circuitspec.testing.planted import PlantParams, plant

    p = plant(PlantParams(digits=2), seed=1)
    lay = Layout(2)
    sites_of = {node: [Site.parse(s) for s in sites] for node, sites in p.truth.items()}
    verdict = Verdict(
        hypothesis="planted", model=p.model.card.name,
        layout=model_layout(digits=2, n_layers=p.params.n_layers, n_heads=p.params.n_heads),
        status="holds", summary="truth",
        nodes=[NodeVerdict(node=node, variables=[f"{p.variables[node][0]}({p.variables[node][1]})"], required=True,
                           status="confirmed", sites=list(p.truth[node])) for node in p.truth],
        metrics=CircuitMetrics(), useful_sites=sorted({str(s) for s in sites_of["SA0"]}) + [f"P{lay.d(0)}.L0.H0"], seed=0,
    )
    expected: dict[str, set[str]] = {}
    for node, sites in sites_of.items():
        for s in sites:
            row = f"L{s.layer}_H{s.head}" if s.kind == "head" else f"L{s.layer}_MLP"
            expected.setdefault(f"cell_{row}_P{s.position}", set()).add(node)
    cells = _svg_cells(nodemap.node_map_svg(verdict))
    drawn = {cid: {t for t in c["text"] if not t.startswith("N[")} for cid, c in cells.items() if c["fill"] != UNUSED_FILL}
    useful = {f"cell_L0_H0_P{lay.d(0)}"}
    assert {cid: names for cid, names in drawn.items() if cid not in useful} == expected
    assert drawn[f"cell_L0_H0_P{lay.d(0)}"] == {nodemap.USEFUL_TEXT}
    # neuron nodes show their neuron indices under the name
    sv1 = next(s for s in sites_of["SV1"])
    cell = cells[f"cell_L{sv1.layer}_MLP_P{sv1.position}"]
    assert any(t.startswith("N[") for t in cell["text"])
