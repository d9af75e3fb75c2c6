"""`circuitspec spec ...` and the graphviz drawing of a hypothesis."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from circuitspec.cli import main
from circuitspec.render.hypothesis import hypothesis_graph, write_graph
from circuitspec.spec import expand, load, make_shape

SPECS = Path(__file__).resolve().parent.parent / "specs"
SVG = "{http://www.w3.org/2000/svg}"

BROKEN = """\
name: broken
task: add
nodes:
  - id: SA{n}
    for_each: {n: 0..digits-1}
    computes: SB(n)
"""


def test_check_broken_spec_prints_error_without_traceback(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from circuitspec.cli import main; sys.exit(main(sys.argv[1:]))", "spec", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{path}:6:5" in proc.stderr.replace("\n", "")  # file:line:column of 'computes'. 
    assert "unknown variable 'SB'" in proc.stderr
    assert "did you mean" in proc.stderr


def test_check_prints_the_expanded_nodes(capsys):
    assert main(["spec", "check", str(SPECS / "addition.yaml"), "--digits", "5", "--layers", "2", "--heads", "3"]) == 0
    out = capsys.readouterr().out
    assert "add d5 l2 h3 (options): 25 nodes, 28 edges" in out
    for node in ("SA4", "ST0", "SV4", "A5"):
        assert node in out
    # several files, shape from the defaults inside each spec's applies_to
    files = [str(p) for p in sorted(SPECS.glob("*.yaml"))]
    assert main(["spec", "check", "-q", *files]) == 0
    out = capsys.readouterr().out
    assert "mix d6 l3 h4 (defaults)" in out and "add d6 l1 h3 (defaults)" in out


def test_check_reports_a_shape_the_spec_does_not_apply_to(capsys):
    assert main(["spec", "check", str(SPECS / "addition.yaml"), "--layers", "1"]) == 2
    err = capsys.readouterr().err
    assert "does not apply" in err and "layers 2.." in err


def test_check_several_files_reports_each_failure(tmp_path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    assert main(["spec", "check", str(SPECS / "addition.yaml"), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "addition is valid" in captured.out
    assert "unknown variable 'SB'" in captured.err and "1 of 2 spec files" in captured.err


def test_schema_is_json(capsys):
    assert main(["spec", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "Node" in schema["$defs"] and schema["title"] == "circuitspec hypothesis"


def test_render_writes_real_svg_png_and_dot(tmp_path, capsys):
    out = tmp_path / "mixed.svg"
    assert main(["spec", "render", str(SPECS / "mixed.yaml"), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert {"SA3", "ST0", "OPR2", "SIGN", "SV5"} <= titles
    assert "SA3&#45;&gt;A3" in out.read_text() or "SA3->A3" in titles
    png = tmp_path / "add.png"
    assert main(["spec", "render", str(SPECS / "addition.yaml"), "-o", str(png), "--digits", "3"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dot = tmp_path / "sub.dot"
    assert main(["spec", "render", str(SPECS / "subtraction.yaml"), "-o", str(dot)]) == 0
    assert dot.read_text().startswith("digraph")
    assert main(["spec", "render", str(SPECS / "addition.yaml"), "--format", "gif"]) == 2


def test_hypothesis_graph_draws_labels_and_colours(tmp_path):
    graph = expand(load(SPECS / "addition.yaml"), make_shape("add", 5, 2, 3))
    drawing = hypothesis_graph(
        graph, labels={"SA3": "P13.L0.H1+H2"}, colors={"SA3": "#a8dca0", "SV2": "#f2a3a3"}, title="verdict"
    )
    path = write_graph(drawing, tmp_path / "verdict.svg")
    root = ET.parse(path).getroot()
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "P13.L0.H1+H2" in texts and "verdict" in texts
    fills = {p.get("fill") for p in root.iter(f"{SVG}path")} | {p.get("fill") for p in root.iter(f"{SVG}polygon")}
    assert "#a8dca0" in fills and "#f2a3a3" in fills
    # optional nodes are dashed in the source
    assert 'SC0 [label="SC0' in drawing.source and "dashed" in drawing.source
