"""verify --labels: the useful sites a hypothesis leaves unassigned, named by the model's labels.

On add_d5_l1_h3_t15K, addition_1layer leaves the look-ahead heads unassigned: with labels on, the
verdict, the node map, the gap report, report.json and the page say what they compute (P14.L0.H0:
SV(1)) instead of "?"; the labels are the cached ones (same key as ``cs.label``); with labels off
the verdict's JSON is what it was before labels existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import circuitspec as cs
from circuitspec.cli import main
from circuitspec.render.gap import gap_lines
from circuitspec.render.nodemap import node_map, node_map_svg
from circuitspec.verify.core import verify

torch.set_num_threads(1)

ZOO = "add_d5_l1_h3_t15K_s372001"
SPEC = str(Path(__file__).parents[1] / "specs" / "addition_1layer.yaml")


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    cache = tmp_path_factory.mktemp("labels-cache")
    on = verify(SPEC, ZOO, cache_dir=cache, labels=True)
    off = verify(SPEC, ZOO, cache_dir=cache)
    return cache, on, off


def test_unassigned_useful_sites_carry_their_labels(verdicts):
    cache, on, _ = verdicts
    notes = {n.site: n for n in on.site_labels}
    placed = {s for n in on.nodes for s in n.sites}
    assert set(notes) == set(on.useful_sites) - placed
    assert notes["P14.L0.H0"].computes == ["SV(1)"] and notes["P14.L0.H0"].text.startswith("SV(1) 1.00 [")
    assert notes["P12.L0.H0"].computes == [] and notes["P12.L0.H0"].text.startswith("unexplained (best ")
    assert cs.label(ZOO, cache_dir=cache).from_cache  # verify labelled under the label cache's own key


def test_labels_off_keeps_the_verdict_json_as_before(verdicts):
    _, on, off = verdicts
    assert off.site_labels is None and "site_labels" not in json.loads(off.to_json())
    data = json.loads(on.to_json())
    data.pop("site_labels")
    assert data == json.loads(off.to_json())


def test_node_map_and_gap_report_name_what_the_sites_compute(verdicts):
    _, on, off = verdicts
    cell = node_map(on).cell("P14.L0.H0")
    assert cell.kind == "useful" and cell.computes == ["SV(1)"]
    assert node_map(off).cell("P14.L0.H0").computes == []
    svg = node_map_svg(on).decode()
    assert "computes SV(1)" in svg and ">SV(1)</text>" in svg
    assert any("P14.L0.H0 (computes SV(1)): +" in line for line in gap_lines(on))
    assert not any("computes" in line for line in gap_lines(off))


def test_cli_labels_reach_report_json_and_the_page(verdicts, tmp_path, monkeypatch):
    cache, on, _ = verdicts
    out = tmp_path / "report"
    args = ["verify", SPEC, "-m", ZOO, "-o", str(out), "-q", "-j", "1"]
    monkeypatch.setenv("CIRCUITSPEC_CACHE", str(cache))
    assert main([*args, "--labels"]) == 1  # addition_1layer fails on its carry edges here
    report = json.loads((out / "report.json").read_text())
    assert report["verdicts"][0]["site_labels"] == json.loads(on.to_json())["site_labels"]
    html = (out / "index.html").read_text()
    assert "useful sites no node holds" in html and "P14.L0.H0: SV(1) 1.00" in html
