"""A task written outside the package (examples/reverse_task.py) runs through the task protocol:
it loads by import path, its spec expands against its own layout, and on its trained model a true
spec holds and a false one fails, from the CLI like the built-in ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from circuitspec.cli import main
from circuitspec.errors import ModelError, SpecError, TaskError
from circuitspec.models import load
from circuitspec.spec import expand, load as load_spec, loads
from circuitspec.spec.shape import make_shape
from circuitspec.tasks import Task
from circuitspec.tasks.registry import make_task, vocabulary

ROOT = Path(__file__).resolve().parents[1]
REF = "examples.reverse_task:ReverseTask"
MODEL = ROOT / "examples" / "models" / "reverse_d6_l1_h2_t3K_s1.json"
SPECS = ROOT / "examples" / "specs"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # import paths resolve from the current directory, as with python -m


def test_the_plugin_loads_by_import_path():
    task = make_task(REF, 4)
    assert type(task).__module__ == "examples.reverse_task" and isinstance(task, Task)
    assert task.decode(task.encode(["3051="])) == ["3051=1503"]
    g = torch.Generator().manual_seed(0)
    tokens = task.generate(64, g, cls="plain")
    cf = task.counterfactuals(tokens, ("X", 1), g)
    assert torch.equal(cf.predicted[:, 2], task.variable(cf.source, "X", 1))  # A(2) = X(1), the rest is the base's
    assert torch.equal(cf.predicted[:, [0, 1, 3]], task.answers(tokens)[:, [0, 1, 3]])
    model = load(MODEL)
    assert model.card.task.op == REF and model.task.n_ctx == 13 and model.card.results.uniform.failures == 0


def test_a_spec_expands_against_the_tasks_layout():
    graph = expand(load_spec(SPECS / "reverse.yaml"), make_shape(REF, 6, 1, 2))
    fetch = graph.nodes["FETCH0"]["instance"]
    assert fetch.variables == [("X", 5)] and fetch.positions == [6] and fetch.attends == [([5], 0.3)]
    assert graph.nodes["A5"]["instance"].impacts_exactly == ["A5"]
    with pytest.raises(SpecError, match="has no OPR position"):
        expand(loads(f"name: x\ntask: {REF}\nnodes:\n  - {{id: O, computes: X(0), at: OPR}}\n"), make_shape(REF, 6, 1, 2))
    with pytest.raises(SpecError, match="unknown variable 'SA'") as err:
        loads(f"name: x\ntask: {REF}\nnodes:\n  - {{id: O, computes: SA(0)}}\n", file="s.yaml")
    assert err.value.line == 4
    with pytest.raises(SpecError, match="cannot change"):  # edges follow the task's own causal model
        expand(loads(f"name: x\ntask: {REF}\nnodes:\n  - {{id: F, computes: X(0), site: head, at: predicts A(0)}}\n"
                     "  - {id: B, computes: A(0), site: mlp, at: predicts A(0)}\nedges: [F -> B]\n"), make_shape(REF, 6, 1, 2))
    assert vocabulary(REF).reaches(("X", 5), ("A", 0), 6)


def test_spec_check_and_render_use_the_tasks_layout(tmp_path, capsys):
    assert main(["spec", "check", str(SPECS / "reverse.yaml"), "--layers", "1", "--heads", "2"]) == 0
    assert "attends D5>=0.3" in capsys.readouterr().out
    assert main(["spec", "render", str(SPECS / "reverse.yaml"), "-o", str(tmp_path / "g.svg")]) == 0
    assert ">A0<" in (tmp_path / "g.svg").read_text()


def test_a_bad_import_path_is_a_located_error(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ntask: examples.no_such_module:Task\nnodes: []\n")
    assert main(["spec", "check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:2" in err and "cannot import examples.no_such_module" in err
    spec.write_text("name: bad\ntask: examples.reverse_task:NoSuchClass\nnodes: []\n")
    assert main(["spec", "check", str(spec)]) == 2
    assert "has no class NoSuchClass" in capsys.readouterr().err
    with pytest.raises(TaskError, match="is not a task"):
        make_task("examples/reverse_task.py", 6)
    card = json.loads(MODEL.read_text())
    card["task"]["op"] = "examples.reverse_task:Missing"
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="has no class Missing"):
        load(tmp_path / "m.json")


def test_the_true_spec_holds_and_the_false_one_fails(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["verify", str(SPECS / "reverse.yaml"), str(SPECS / "copy_false.yaml"), "-m", str(MODEL), "-o", str(out), "-q", "-j", "1"])
    assert code == 1  # one spec fails
    verdicts = {v["hypothesis"]: v for v in json.loads((out / "report.json").read_text())["verdicts"]}
    true, false = verdicts["reverse"], verdicts["copy_false"]
    assert true["status"] == "holds" and true["metrics"]["faithfulness"]["value"] >= 0.9
    placed = {n["node"]: n["sites"] for n in true["nodes"]}
    assert placed["FETCH0"][0].startswith("P6.L0.H") and placed["A0"] == ["P6.L0.MLP"]
    assert all(e["status"] == "confirmed" for e in true["edge_results"])
    assert false["status"] == "fails"
    assert all(n["reason"] == "failed_causal_test" for n in false["nodes"])
    assert "reverse_d6_l1_h2_t3K_s1" in capsys.readouterr().out


def test_the_training_script_describes_the_stored_model():
    from examples.train_reverse import card

    stored = load(MODEL).card
    built = card()
    assert (built.name, built.architecture, built.task) == (stored.name, stored.architecture, stored.task)
    assert built.recipe.model_copy(update={"train_seconds": None, "torch_version": None}) == stored.recipe.model_copy(
        update={"train_seconds": None, "torch_version": None}
    )
