"""Labels: what every useful site computes, against planted ground truth and on a real zoo model.

Planted circuits know their truth: every planted site must be labelled with its planted variable
(or the same variable under another name) and nothing else may get a label. On the shipped
1-layer lookahead model the labels are the paper's story (SA heads at each answer token, ST heads
at the one before, A(0) at the last), they are cached with the facts, and the CLI prints them and
writes JSON, SVG and HTML.
"""

from __future__ import annotations

import json

import pytest
import torch

import circuitspec as cs
from circuitspec.cli import main
from circuitspec.engine import Engine
from circuitspec.engine.facts import load_or_compute
from circuitspec.errors import CircuitSpecError
from circuitspec.match.label import LabelParams, label
from circuitspec.render.labels import label_map, label_map_svg, labels_html, table_lines
from circuitspec.testing.label_truth import label_recovery
from circuitspec.testing.planted import PlantParams, plant

torch.set_num_threads(1)

ZOO = "add_d5_l1_h3_t15K_s372001"
PLANTED = [
    (PlantParams(digits=2, n_heads=4, decoy_heads=3, decoy_neurons=2), 3),  # split and two-head SA, decoys
    (PlantParams(digits=2, n_heads=3, extra_layers=1, split_prob=0.0, decoy_heads=5, decoy_neurons=3), 11),
    (PlantParams(digits=3, n_heads=4, split_prob=1.0, decoy_heads=4), 2),
]


@pytest.mark.parametrize("params,seed", PLANTED)
def test_labels_name_every_planted_site_and_nothing_else(params, seed):
    planted = plant(params, seed)
    engine = Engine(planted.model)
    labels = label(engine, load_or_compute(engine, use_cache=False), LabelParams(neurons=True))
    rec = label_recovery(planted, labels)
    assert rec.recall == 1.0, rec.missed
    assert rec.precision == 1.0, rec.wrong
    assert not rec.decoys_labelled
    assert not rec.extra_neurons
    # a two-head SA node is one labelled set whose heads are 'in_set', never labelled alone
    for node, sites in planted.truth.items():
        if len(sites) == 2:
            for s in sites:
                assert labels.site(s).status == "in_set", (node, labels.site(s).text)


@pytest.fixture(scope="module")
def zoo_labels(tmp_path_factory):
    cache = tmp_path_factory.mktemp("label-cache")
    first = cs.label(ZOO, cache_dir=cache)
    return cache, first


def test_zoo_labels_tell_the_lookahead_story_and_are_cached(zoo_labels):
    cache, first = zoo_labels
    assert not first.from_cache
    # SA(n) at the token before A(n) (for n = 1..4), A(0) = SA(0) at the last: the 1-layer lookahead model
    sa = {s.site: v.variable for s in first.sites if s.kind == "head" for v in s.variables if v.variable.startswith("SA")}
    assert sa == {"P13.L0.H1": "SA(4)", "P14.L0.H1": "SA(3)", "P15.L0.H1": "SA(2)", "P16.L0.H1": "SA(1)"}
    st = {s.site: v.variable for s in first.sites if s.kind == "head" for v in s.variables if v.variable.startswith("ST")}
    assert st == {"P12.L0.H1": "ST(4)", "P13.L0.H0": "ST(2)", "P13.L0.H2": "ST(3)", "P14.L0.H2": "ST(2)", "P15.L0.H2": "ST(1)"}
    # the look-ahead heads: the carry of column n-2 where A(n) is predicted
    sv = {s.site: v.variable for s in first.sites if s.kind == "head" for v in s.variables if v.variable.startswith("SV")}
    assert sv == {"P12.L0.H2": "SV(3)", "P14.L0.H0": "SV(1)", "P15.L0.H0": "SV(0)", "P16.L0.H2": "SV(0)"}
    # the model fails cascades (S3+), so the pairs come from the classes it answers
    assert first.explains == ["S0", "S1", "S2"] and [c.cls for c in first.classes if not c.answered] == ["S3", "S4", "S5"]
    # the MLP at A(2) reads Sum 9 of column 1, visible only with its Carry One held equal
    ss = next(v for v in first.site("P15.L0.MLP").variables if v.variable == "SS(1)")
    assert ss.held == ["SC(1)"] and ss.name == "SS(1) (keep SC(1))"
    a0 = first.site("P17.L0.H1").variables[0]
    assert {a0.variable, *a0.same_as} >= {"A(0)", "SA(0)"}
    for s in first.sites:
        assert s.serves, s.site  # useful sites change some answer token
        for v in s.variables:
            assert v.accuracy >= 0.9 and v.pairs >= 20 and v.low <= v.accuracy <= v.high
        if s.status == "unexplained":
            assert s.best is not None and s.best.accuracy < 0.9
    second = cs.label(ZOO, cache_dir=cache)
    assert second.from_cache
    assert second.to_json() == first.to_json()


def test_labels_render_as_table_map_and_page(zoo_labels):
    _, labels = zoo_labels
    lines = table_lines(labels)
    assert lines[1].startswith("P12.L0.H0 ")  # site name first, in the paper's notation
    assert any(line.startswith("P14.L0.H1") and "SA(3) 1.00 [" in line for line in lines)
    m = label_map(labels)
    assert "SA(3)" in m.cell("P14.L0.H1").nodes
    assert m.cell("P12.L0.H0").kind == "useful"  # unexplained
    assert m.cell("P0.L0.H0").kind == "unused"
    svg = label_map_svg(labels).decode()
    assert 'id="cell_L0_H1_P14"' in svg and "SA(3)" in svg and "unexplained" in svg
    html = labels_html([labels])
    assert ZOO in html and "P14.L0.H1" in html and f"{ZOO}.labels.svg" in html


def test_label_cli_prints_the_table_and_writes_json_svg_html(zoo_labels, tmp_path, capsys):
    cache, labels = zoo_labels
    out = tmp_path / "labels"
    assert main(["label", ZOO, "--cache-dir", str(cache), "-o", str(out), "-j", "1"]) == 0
    printed = capsys.readouterr().out
    assert "P14.L0.H1" in printed and "from the cache" in printed
    data = json.loads((out / f"{ZOO}.labels.json").read_text())
    assert data == json.loads(labels.to_json())
    assert (out / f"{ZOO}.labels.svg").read_text().startswith("<?xml")
    assert "labelled node map" in (out / "index.html").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["label", "no_such_model_d6"], "unknown model"),
        (["label", ZOO, "--pairs", "0"], "bad label option pairs"),
        (["label", ZOO, "--min-accuracy", "1.5"], "bad label option min-accuracy"),
        (["label", ZOO, "--max-heads", "9"], "bad label option max-heads"),
        (["label", ZOO, "--jobs", "0"], "--jobs must be at least 1"),
    ],
)
def test_label_bad_input_exits_2_with_a_hint(args, message, tmp_path, capsys):
    assert main([*args, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_api_rejects_bad_label_options():
    with pytest.raises(CircuitSpecError, match="pairs"):
        cs.label(ZOO, pairs=-1)
    with pytest.raises(CircuitSpecError, match="bad label option unknown-option") as err:
        cs.label(ZOO, unknown_option=3)
    assert "min_accuracy" in (err.value.hint or "")
    assert LabelParams(pairs=1).pairs == 1


def test_scan_shows_cached_labels(zoo_labels, tmp_path, capsys):
    cache, _ = zoo_labels
    assert main(["scan", ZOO, "--cache-dir", str(cache), "--out", str(tmp_path / "f.json")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "labels from `circuitspec label`" in printed and "SA(3) 1.00" in printed
