"""`circuitspec verify` / `render`: planning, executors, resume, files, exit codes.

The real verifier (``circuitspec.verify.core.verify_model``) measures facts on trained models;
here a deterministic stand-in builds verdicts from the *real* expanded hypothesis graph of each
real spec on each model's card, so planning, executors, caching, rendering and exit codes are
tested end to end without torch work. Model cards are real ``ModelCard`` files; only the weights
are absent, so the stand-in loader returns the card.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.models.card import ModelCard, TaskSpec, default_architecture
from circuitspec.spec import expand, loads
from circuitspec.tasks.layout import Layout
from circuitspec.verify import orchestrate
from circuitspec.verify.executors import LocalExecutor, make_executor
from circuitspec.verify.verdict import CircuitMetrics, Estimate, ModelLayout, NodeVerdict, VariableTest, Verdict

TESTS = Path(__file__).parent

# This module stays free of torch at import time (worker processes import it to find the stand-ins),
# so the CLI and the report reader are imported where they are used.


def main(argv):
    from circuitspec.cli import main as cli_main

    return cli_main(argv)


def report_json(report):
    from circuitspec.render.report import report_json as dump

    return dump(report)


def load_report(path):
    from circuitspec.render.report import load_report as load

    return load(path)

ADD_SPEC = """\
name: toy_addition
task: add
applies_to: {layers: 2..}
nodes:
  - id: SA{n}
    for_each: {n: 0..digits-1}
    computes: SA(n)
    at: predicts A(n)
    layers: 0
    max_heads: 2
  - id: ST{n}
    for_each: {n: 0..digits-2}
    computes: ST(n)
    at: D'(0)..sign
    layers: 0
  - id: SV{n}
    for_each: {n: 1..digits-2}
    computes: SV(n)
    at: predicts A(n+1)
    layers: 1
edges:
  - flow: ST{n} -> SV{n}
    for_each: {n: 1..digits-2}
"""

ONE_LAYER_SPEC = """\
name: toy_1layer
task: add
applies_to: {layers: 1}
nodes:
  - id: SA{n}
    for_each: {n: 0..digits-1}
    computes: SA(n)
    at: predicts A(n)
    max_heads: 2
"""

MODELS = ["add_d5_l1_h3_t3K_s1", "add_d5_l2_h3_t3K_s1", "add_d6_l2_h3_t3K_s1", "add_d6_l2_h3_t3K_s2", "sub_d6_l2_h3_t3K_s1"]


# ----------------------------------------------------------------------------- stand-ins


def write_specs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy_addition.yaml").write_text(ADD_SPEC)
    (folder / "toy_1layer.yaml").write_text(ONE_LAYER_SPEC)
    return [folder / "toy_addition.yaml", folder / "toy_1layer.yaml"]


def write_cards(folder: Path, names=MODELS) -> Path:
    """Real model cards (weights hash made up: the stand-in loader never reads weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        op, d, l, h = name.split("_")[:4]
        card = ModelCard(
            name=name,
            architecture=default_architecture(int(d[1:]), int(l[1:]), int(h[1:]), width=32),
            task=TaskSpec(op=op, digits=int(d[1:])),
            weights_sha256=hashlib.sha256(name.encode()).hexdigest(),
        )
        (folder / f"{name}.json").write_text(card.to_json())
    return folder


def fake_load(path):
    card = ModelCard.model_validate_json(Path(path).read_bytes())
    return SimpleNamespace(card=card, name=card.name)


def _u(*parts) -> float:
    """A deterministic number in [0, 1) from the parts (the stand-in's 'measurement')."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16) / 2**32


def fake_verify_model(hypotheses, model, *, seed=0):
    """Verdicts placed from the expanded graph: deterministic in (spec, model, seed).

    Models whose name ends in ``_s2`` lose their second SV node (not placed) so the hypothesis
    fails there; everything else holds. ``$FAKE_SLEEP`` seconds are spent per model and each call is
    logged to ``$FAKE_LOG`` (to see what a rerun recomputes).
    """
    if os.environ.get("FAKE_LOG"):
        with open(os.environ["FAKE_LOG"], "a") as f:
            f.write(f"{model.name} {','.join(h.name for h in hypotheses)}\n")
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    shape = model.card.shape
    lay = Layout(shape.digits)
    layout = ModelLayout(op=shape.op, digits=shape.digits, n_layers=shape.n_layers, n_heads=shape.n_heads,
                         n_ctx=shape.n_ctx, position_labels=[lay.label(p) for p in range(shape.n_ctx)])
    out = []
    for h in hypotheses:
        g = expand(h, shape)
        nodes, useful = [], set()
        sv = sorted(n for n in g.nodes if n.startswith("SV"))
        for nid in g.nodes:
            inst = g.nodes[nid]["instance"]
            u = _u(h.name, model.name, seed, nid)
            pos = inst.positions[int(u * len(inst.positions))]
            layer = inst.layers[0]
            head = int(u * 997) % shape.n_heads
            var = " | ".join(f"{v}({n})" if n is not None else v for v, n in inst.variables)
            acc = 0.9 + 0.1 * _u(nid, seed, model.name, "acc")
            test = VariableTest(variable=var, accuracy=Estimate(value=acc, low=acc - 0.03, high=min(1.0, acc + 0.02), n=256, method="wilson"),
                                changed=Estimate(value=acc, low=acc - 0.03, high=min(1.0, acc + 0.02), n=256, method="wilson"), pairs=256)
            if model.name.endswith("_s2") and len(sv) > 1 and nid == sv[1]:
                nodes.append(NodeVerdict(node=nid, variables=[var], required=inst.required, status="not_placed",
                                         reason="failed_causal_test", detail="best candidate reached 0.40"))
                continue
            sites = [f"P{pos}.L{layer}.H{head}"]
            if inst.max_heads > 1 and u > 0.5:
                sites.append(f"P{pos}.L{layer}.H{(head + 1) % shape.n_heads}")
            nodes.append(NodeVerdict(node=nid, variables=[var], required=inst.required, status="confirmed", sites=sites, tests=[test]))
            useful.update(sites)
        useful.add(f"P{lay.d(0)}.L0.MLP")
        failed = [n.node for n in nodes if n.required and n.status != "confirmed"]
        faith = 0.9 + 0.1 * _u(h.name, model.name, seed)
        out.append(Verdict(
            hypothesis=h.name, model=model.name, layout=layout, edges=sorted(g.edges), status="fails" if failed else "holds",
            summary=f"not placed: {', '.join(failed)}" if failed else "every required node confirmed", nodes=nodes,
            metrics=CircuitMetrics(faithfulness=Estimate(value=faith, low=faith - 0.02, high=min(1.0, faith + 0.01), n=1000, method="bootstrap")),
            useful_sites=sorted(useful), seed=seed,
        ))
    return out


def fake_load_broken(path):
    """Like fake_load, but the '_s2' model's weights are 'corrupt'."""
    if "_s2" in str(path):
        from circuitspec.errors import ModelError

        raise ModelError("weights file does not match its card", file=str(path), hint="retrain it")
    return fake_load(path)


def fake_load_forbidden(path):
    raise AssertionError("render must not load a model")


@pytest.fixture()
def fake_core(monkeypatch):
    """Make the CLI (in this process) use the stand-ins for loading and verifying."""
    install_fakes(monkeypatch.setitem, monkeypatch.setattr)


def install_fakes(setitem=None, setattr_=None):
    import circuitspec.models.zoo as zoo

    core = SimpleNamespace(verify_model=fake_verify_model, __name__="circuitspec.verify.core")
    if setitem is None:
        sys.modules["circuitspec.verify.core"] = core
        zoo.load = fake_load
    else:
        setitem(sys.modules, "circuitspec.verify.core", core)
        setattr_(zoo, "load", fake_load)


def run_cli_subprocess():
    """Entry point for the subprocess test: the CLI with the stand-ins installed."""
    install_fakes()
    sys.exit(main(sys.argv[1:]))


# ----------------------------------------------------------------------------- planning


@pytest.fixture()
def world(tmp_path):
    specs = write_specs(tmp_path / "specs")
    models = write_cards(tmp_path / "models")
    return SimpleNamespace(specs=specs, models=models, tmp=tmp_path)


def test_plan_sends_each_spec_to_the_models_it_applies_to(world):
    hyps = orchestrate.load_specs(world.specs)
    refs = orchestrate.resolve_models([str(world.models)])
    assert [r.name for r in refs] == sorted(MODELS)
    p = orchestrate.plan(hyps, refs)
    pairs = [(x.hypothesis, x.model) for x in p.pairs]
    assert pairs == [
        ("toy_addition", "add_d5_l2_h3_t3K_s1"), ("toy_addition", "add_d6_l2_h3_t3K_s1"), ("toy_addition", "add_d6_l2_h3_t3K_s2"),
        ("toy_1layer", "add_d5_l1_h3_t3K_s1"),
    ]
    # one work item per model, carrying every hypothesis for it
    assert [(it.model.name, [h.name for h in it.hypotheses]) for it in p.items] == [
        ("add_d5_l1_h3_t3K_s1", ["toy_1layer"]), ("add_d5_l2_h3_t3K_s1", ["toy_addition"]),
        ("add_d6_l2_h3_t3K_s1", ["toy_addition"]), ("add_d6_l2_h3_t3K_s2", ["toy_addition"]),
    ]
    why = {(h, m): r for h, m, r in p.not_applicable}
    assert "sub" in why[("toy_addition", "sub_d6_l2_h3_t3K_s1")]
    assert "layers" in why[("toy_1layer", "add_d6_l2_h3_t3K_s1")]


def test_model_selectors_glob_names_and_errors(world):
    d = str(world.models)
    refs = orchestrate.resolve_models([f"{d}/add_d6*.json"])
    assert [r.name for r in refs] == ["add_d6_l2_h3_t3K_s1", "add_d6_l2_h3_t3K_s2"]
    one = orchestrate.resolve_models([f"{d}/add_d5_l1_h3_t3K_s1.json,{d}/sub_d6_l2_h3_t3K_s1.json"])
    assert [r.name for r in one] == ["add_d5_l1_h3_t3K_s1", "sub_d6_l2_h3_t3K_s1"]
    with pytest.raises(CircuitSpecError, match="no model matches"):
        orchestrate.resolve_models([f"{d}/mul_*.json"])
    with pytest.raises(CircuitSpecError):
        orchestrate.resolve_models(["add_d99_l2_h3_s1"])


def test_verdict_key_depends_on_spec_weights_seed_and_version(world):
    h_add, h_one = orchestrate.load_specs(world.specs)
    a, b = orchestrate.resolve_models([str(world.models)])[:2]
    k = orchestrate.verdict_key(h_add, a, 0, "1")
    assert k == orchestrate.verdict_key(orchestrate.load_specs(world.specs)[0], a, 0, "1")  # same content, same key
    assert len({k, orchestrate.verdict_key(h_one, a, 0, "1"), orchestrate.verdict_key(h_add, b, 0, "1"),
                orchestrate.verdict_key(h_add, a, 1, "1"), orchestrate.verdict_key(h_add, a, 0, "2")}) == 5
    changed = loads(ADD_SPEC.replace("max_heads: 2", "max_heads: 3"), file="x.yaml")
    assert orchestrate.verdict_key(changed, a, 0, "1") != k


# ----------------------------------------------------------------------------- executors


def _run(world, out, executor, **kw):
    hyps = orchestrate.load_specs(world.specs)
    refs = orchestrate.resolve_models([str(world.models)])
    p = orchestrate.plan(hyps, refs, out=out, verify_model=fake_verify_model, load_model=fake_load, threads=None, **kw)
    events = []
    rep = orchestrate.execute(p, executor, out=out, on_event=events.append)
    return rep, events


def test_process_pool_gives_the_same_report_as_one_process(world):
    one, events1 = _run(world, None, LocalExecutor(1))
    two, events2 = _run(world, None, LocalExecutor(2))
    assert report_json(one) == report_json(two)
    assert [v.status for v in one.verdicts] == ["holds", "holds", "fails", "holds"]
    # progress events come back from the worker processes too
    for events in (events1, events2):
        stages = {(e.model, e.stage) for e in events}
        assert ("add_d6_l2_h3_t3K_s2", "verifying") in stages and ("add_d6_l2_h3_t3K_s2", "done") in stages
        done = [e for e in events if e.stage == "done"]
        assert len(done) == 4 and all(e.seconds is not None and e.seconds >= 0 for e in done)


def test_jobs_default_to_the_cores_this_process_may_use(monkeypatch):
    from circuitspec.verify.executors import default_jobs

    assert default_jobs() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert default_jobs() == 3 and LocalExecutor().jobs == 3 and make_executor("local").jobs == 3
    assert LocalExecutor(1).jobs == 1


def test_parallel_work_starts_with_the_heaviest_model(world):
    from circuitspec.verify.executors import start_order

    hyps = orchestrate.load_specs(world.specs)
    p = orchestrate.plan(hyps, orchestrate.resolve_models([str(world.models)]))
    costs = {it.model.name: it.cost for it in p.items}
    # 6 digits (22 positions) and two hypotheses weigh more than 5 digits; a 1-layer model least
    assert costs["add_d6_l2_h3_t3K_s1"] == 1 * 2 * 4 * 22 and costs["add_d5_l1_h3_t3K_s1"] == 1 * 1 * 4 * 19
    order = [p.items[i].model.name for i in start_order(p.items)]
    assert order[0].startswith("add_d6") and order[-1] == "add_d5_l1_h3_t3K_s1"
    assert start_order([object(), object()]) == [0, 1]


def test_worker_errors_reach_the_caller_with_their_type(world, tmp_path):
    from circuitspec.errors import ModelError

    hyps = orchestrate.load_specs(world.specs)
    refs = orchestrate.resolve_models([str(world.models)])
    p = orchestrate.plan(hyps, refs, verify_model=fake_verify_model, load_model=fake_load_broken, threads=None)
    for jobs in (1, 2):
        with pytest.raises(ModelError, match="does not match its card") as err:
            orchestrate.execute(p, LocalExecutor(jobs))
        assert "_s2" in str(err.value) and "retrain it" in str(err.value)
    bad = tmp_path / "bad"
    write_cards(bad, ["add_d6_l2_h3_t3K_s7"])
    card = bad / "add_d6_l2_h3_t3K_s7.json"
    card.write_text(card.read_text().replace('"digits": 6', '"digits": "six"'))
    with pytest.raises(CircuitSpecError, match="does not validate"):
        orchestrate.resolve_models([str(bad)])
    with pytest.raises(CircuitSpecError, match="unknown executor"):
        make_executor("slurm")
    with pytest.raises(CircuitSpecError, match="positive"):
        make_executor("local", jobs=0)


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(CircuitSpecError, match=r"circuitspec\[ray\]"):
        make_executor("ray")


def test_ray_executor_gives_the_same_report_as_local(world):
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship the stand-ins to Ray workers
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        via_ray, _ = _run(world, None, make_executor("ray"))
        # an error in a Ray task reaches the caller with its own type
        hyps = orchestrate.load_specs(world.specs)
        refs = orchestrate.resolve_models([str(world.models)])
        p = orchestrate.plan(hyps, refs, verify_model=fake_verify_model, load_model=fake_load_broken, threads=None)
        from circuitspec.errors import ModelError

        with pytest.raises(ModelError, match="does not match its card"):
            orchestrate.execute(p, make_executor("ray"))
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    local, _ = _run(world, None, LocalExecutor(1))
    assert report_json(via_ray) == report_json(local)


# ----------------------------------------------------------------------------- resume


def test_rerun_reuses_finished_verdicts_and_gives_the_same_report(world, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    out = tmp_path / "out"
    first, _ = _run(world, out, LocalExecutor(1))
    assert len(log.read_text().splitlines()) == 4
    assert len(list((out / "verdicts").glob("*.json"))) == 4
    # drop one finished verdict: only that model is verified again
    victim = sorted((out / "verdicts").glob("*.json"))[0]
    gone = json.loads(victim.read_text())["model"]
    victim.unlink()
    log.write_text("")
    again, events = _run(world, out, LocalExecutor(1))
    assert log.read_text().split() == [gone, next(h for h, m in [(v.hypothesis, v.model) for v in first.verdicts] if m == gone)]
    assert report_json(again) == report_json(first)
    assert sum(e.stage == "cached" for e in events) == 3
    # a different seed is a different key: nothing reused
    log.write_text("")
    _run(world, out, LocalExecutor(1), seed=5)
    assert len(log.read_text().splitlines()) == 4


def test_killed_run_then_rerun_gives_the_uninterrupted_report(world, tmp_path, fake_core, monkeypatch):
    args = ["verify", "-j", "1", *map(str, world.specs), "--models", str(world.models), "--quiet"]
    # uninterrupted (in this process)
    full = tmp_path / "full"
    assert main([*args, "--out", str(full)]) == 1  # one model fails the addition hypothesis
    # interrupted: a separate process, killed with SIGKILL once two verdicts are on disk
    out = tmp_path / "killed"
    env = dict(os.environ, FAKE_SLEEP="0.7", PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-c", "import test_verify_cli as t; t.run_cli_subprocess()", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and len(list((out / "verdicts").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    done = list((out / "verdicts").glob("*.json"))
    assert 2 <= len(done) < 4, f"the run was not interrupted midway: {err.decode()[-2000:]}"
    assert not (out / "report.json").exists() and not (out / "index.html").exists()
    for f in done:  # finished verdicts are complete files
        Verdict.model_validate_json(f.read_text())
    # rerun: only the unfinished models are verified, and the report is the uninterrupted one
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    assert main([*args, "--out", str(out)]) == 1
    assert len(log.read_text().splitlines()) == 4 - len(done)
    assert (out / "report.json").read_bytes() == (full / "report.json").read_bytes()


# ----------------------------------------------------------------------------- CLI


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith("#"):
                self.refs.append(v)


def test_cli_verify_writes_every_file_and_exits_1_when_a_hypothesis_fails(world, fake_core, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = world.tmp / "report"
    code = main(["verify", "-j", "1", *map(str, world.specs), "--models", str(world.models), "--out", str(out), "--quiet"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "add_d6_l2_h3_t3K_s2" in printed and "fails" in printed and "SV2: not placed" in printed
    rep = load_report(out / "report.json")
    assert [(v.hypothesis, v.model, v.status) for v in rep.verdicts][2] == ("toy_addition", "add_d6_l2_h3_t3K_s2", "fails")
    # junit: one test case per pair, the failing one names its failing node
    root = ET.parse(out / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(rep.verdicts) == 4
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["add_d6_l2_h3_t3K_s2"]
    assert "SV2" in failures[0].find("failure").get("message")
    # every SVG is well-formed SVG, and index.html references only files that exist
    svgs = sorted(f for f in out.rglob("*.svg") if not f.name.endswith(".dot.svg"))
    assert len(svgs) == 4 * 2 + 2  # graph + node map per pair, one matrix per hypothesis
    for f in sorted(out.rglob("*.svg")):  # with the graphviz layouts where dot works
        assert ET.parse(f).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    links = _Links()
    links.feed((out / "index.html").read_text())
    assert len([r for r in links.refs if r.endswith(".svg")]) >= 4 * 2 + 2
    for ref in links.refs:
        assert not ref.startswith(("/", "http:", "https:", "file:")), ref
        assert (out / ref).is_file(), ref
    # a second identical run: same bytes, all reused
    code = main(["verify", "-j", "1", *map(str, world.specs), "--models", str(world.models), "--out", str(out), "--quiet"])
    assert code == 1
    assert "4 reused" in capsys.readouterr().err
    assert load_report(out / "report.json") == rep


def test_cli_default_jobs_follow_the_affinity_and_the_summary_times_each_model(world, fake_core, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one usable core: the stand-ins run in this process
    out = world.tmp / "timed"
    assert main(["verify", *map(str, world.specs), "--models", str(world.models), "--out", str(out), "-q"]) == 1
    printed = capsys.readouterr().out
    assert "wall time per model" in printed
    for name in ("add_d5_l1_h3_t3K_s1", "add_d5_l2_h3_t3K_s1", "add_d6_l2_h3_t3K_s1", "add_d6_l2_h3_t3K_s2"):
        assert re.search(rf"{name}\s*│\s*\d+\.\d s", printed), printed
    assert main(["verify", *map(str, world.specs), "--models", str(world.models), "--out", str(out), "-q"]) == 1
    assert re.search(r"add_d5_l1_h3_t3K_s1\s*│\s*reused", capsys.readouterr().out)


def test_cli_exit_0_when_all_hold_and_2_on_user_errors(world, fake_core, capsys):
    out = world.tmp / "ok"
    code = main(["verify", "-j", "1", *map(str, world.specs), "--models", f"{world.models}/add_d5*.json", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr()
    bad = world.tmp / "bad.yaml"
    bad.write_text(ADD_SPEC.replace("SA(n)", "SX(n)"))
    for argv, expect in [
        (["verify", str(bad), "--models", str(world.models)], "bad.yaml"),
        (["verify", str(world.specs[0]), "--models", "nonexistent_model"], "unknown model"),
        (["verify", str(world.specs[0]), "--models", f"{world.models}/sub*.json"], "none of the hypotheses applies"),
        (["verify", str(world.specs[0]), "--models", str(world.models), "--executor", "dask"], "unknown executor"),
        (["verify", str(world.tmp / "missing.yaml"), "--models", str(world.models)], "missing.yaml"),
        (["render", str(world.tmp / "nowhere" / "report.json")], "no report"),
    ]:
        capsys.readouterr()
        assert main([*argv, "--out", str(world.tmp / "x")] if argv[0] == "verify" else argv) == 2, argv
        err = capsys.readouterr().err
        assert "error:" in err and expect in err, (argv, err)
        assert "Traceback" not in err


def test_cli_render_rebuilds_the_report_without_a_model(world, fake_core, monkeypatch, capsys):
    out = world.tmp / "report"
    main(["verify", "-j", "1", *map(str, world.specs), "--models", str(world.models), "--out", str(out), "-q"])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and "verdicts" not in p.parts}
    import circuitspec.models.zoo as zoo

    monkeypatch.setattr(zoo, "load", fake_load_forbidden)
    monkeypatch.setitem(sys.modules, "circuitspec.verify.core", None)
    again = world.tmp / "again"
    assert main(["render", str(out / "report.json"), "--out", str(again)]) == 0
    after = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert after == before
    # in place, from the folder
    (out / "index.html").unlink()
    assert main(["render", str(out)]) == 0
    assert (out / "index.html").read_bytes() == before[Path("index.html")]


def test_two_runs_into_one_folder_merge_and_a_folder_in_use_is_refused(world, fake_core, capsys):
    out = world.tmp / "shared"
    add, one = map(str, world.specs)
    assert main(["verify", "-j", "1", add, "--models", str(world.models), "--out", str(out), "-q"]) == 1
    assert main(["verify", "-j", "1", one, "--models", str(world.models), "--out", str(out), "-q"]) == 0
    merged = load_report(out / "report.json")
    # the second run's report holds the first run's verdicts too (from the verdicts folder), in one order
    both = world.tmp / "both"
    assert main(["verify", "-j", "1", add, one, "--models", str(world.models), "--out", str(both), "-q"]) == 1
    assert [(v.hypothesis, v.model) for v in merged.verdicts] == [
        ("toy_1layer", "add_d5_l1_h3_t3K_s1"),
        ("toy_addition", "add_d5_l2_h3_t3K_s1"), ("toy_addition", "add_d6_l2_h3_t3K_s1"), ("toy_addition", "add_d6_l2_h3_t3K_s2"),
    ]
    assert {(v.hypothesis, v.model): v for v in merged.verdicts} == {(v.hypothesis, v.model): v for v in load_report(both / "report.json").verdicts}
    root = ET.parse(out / "junit.xml").getroot()
    assert len(root.findall(".//testcase")) == 4
    # another seed's verdicts in the folder are not this run's: not merged
    assert main(["verify", "-j", "1", one, "--models", str(world.models), "--out", str(out), "--seed", "3", "-q"]) == 0
    assert [v.hypothesis for v in load_report(out / "report.json").verdicts] == ["toy_1layer"]
    # a folder another live run holds is refused, with a clear message; nothing is written
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".circuitspec-run.lock").write_text(str(holder.pid))
        before = (out / "report.json").read_bytes()
        capsys.readouterr()
        assert main(["verify", "-j", "1", add, "--models", str(world.models), "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert "in use by another verify run" in err and str(holder.pid) in err and "Traceback" not in err
        assert (out / "report.json").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over
    assert main(["verify", "-j", "1", add, "--models", str(world.models), "--out", str(out), "-q"]) == 1
    assert not (out / ".circuitspec-run.lock").exists()
