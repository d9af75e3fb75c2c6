"""The public API in ``circuitspec/__init__.py``: light import, every name resolves, the examples run.

Runs each documented entry point for real; the ones that verify or scan use the shipped zoo
(facts are cached on disk, so a second run is quick).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import circuitspec as cs

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def test_import_is_light():
    code = "import sys, circuitspec; print(sorted(m for m in ('torch', 'transformer_lens', 'pytest', 'hypothesis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_is_documented():
    for name in cs.__all__:
        value = getattr(cs, name)
        if callable(value) and not isinstance(value, type) or name in ("Hypothesis", "Verdict"):
            assert (value.__doc__ or "").strip(), f"circuitspec.{name} has no docstring"
    assert cs.__version__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cs.nope  # noqa: B018
    assert "strategies" in dir(cs) and cs.strategies.questions


def test_load_and_build_give_the_same_hypothesis():
    loaded = cs.load_hypothesis(SPECS / "negative_control.yaml")
    built = cs.hypothesis(
        "negative_control",
        task="add",
        description=loaded.description,
        applies_to={"digits": "2..", "heads": "3.."},
        nodes=[
            {
                "id": "SA{n}",
                "description": "(wrong) Base Add of column n, claimed where A(n+1) is predicted",
                "for_each": cs.EACH_DIGIT,
                "computes": "SA(n)",
                "site": "head",
                "max_heads": 2,
                "at": "predicts A(n+1)",
                "layers": 0,
                "attends": cs.attends(["D(n)", "D'(n)"], 0.3),
                "impacts": {"exactly": "A(n+1)"},
                "breaks": "S0",
            }
        ],
        checks={"min_faithfulness": 0.9},
    )
    assert built == loaded
    assert cs.load_hypothesis(SPECS / "negative_control.yaml") == loaded


def test_user_errors_are_circuitspec_errors(tmp_path: Path):
    with pytest.raises(cs.SpecError):
        cs.hypothesis("bad", task="add", nodes=[{"id": "X", "computes": "SQ(n)"}])
    with pytest.raises(cs.CircuitSpecError):
        cs.load_hypothesis(tmp_path / "missing.yaml")
    with pytest.raises(cs.ModelError, match="unknown model"):
        cs.load_model("add_d99_l9_h9_s1")
    with pytest.raises(cs.ModelError, match="model folder not found"):
        cs.list_zoo(tmp_path / "nowhere")
    with pytest.raises(cs.SpecError, match="expected a Hypothesis"):
        cs.verify(42, "add_d6_l2_h3_s372001")


def test_tutorial_hypothesis_is_valid_and_expands():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import tutorial
    finally:
        sys.path.remove(str(ROOT / "examples"))
    h = tutorial.base_add_hypothesis()
    graph = cs.expand(h, cs.spec.make_shape("add", 6, 2, 3))
    assert len(graph) == 6 + 6  # SA0..SA5 and SC0..SC5
    assert cs.Hypothesis.from_yaml(h.to_yaml()) == h


def test_models_verify_scan_and_render_on_the_shipped_zoo(tmp_path: Path):
    import torch

    torch.set_num_threads(1)
    cards = cs.list_zoo()
    assert sum(c.short_name == "add_d5_l1_h3_s372001" for c in cards) == 2  # trained 6K and 15K steps
    (model,) = cs.load_zoo(models="add_d5_l1_h3_t6K*")
    assert cs.load_model("add_d5_l1_h3_t6K_s372001").card == model.card
    with pytest.raises(cs.CircuitSpecError, match="ambiguous"):
        cs.load_model("add_d5_l1_h3_s372001")

    verdict = cs.verify(SPECS / "negative_control.yaml", model)  # the deliberately wrong hypothesis
    assert isinstance(verdict, cs.Verdict) and verdict.status == "fails"
    assert json.loads(verdict.to_json())["model"] == model.name

    facts = cs.scan(model)  # the facts verify measured, from the on-disk cache
    assert facts.from_cache and facts.model == model.name
    assert set(facts.useful_sites) == set(verdict.useful_sites)

    report = cs.Report(verdicts=[verdict], circuitspec_version=cs.__version__, seed=0)
    rendered = cs.write_report(report, tmp_path / "report")
    assert cs.load_report(rendered.report_json) == report
    assert cs.graph_svg(verdict).lstrip().startswith(b"<")
    assert b"<svg" in cs.node_map_svg(verdict)
