"""suggest: a hypothesis proposed from labels, against planted ground truth and on the 1-layer zoo model.

Planted circuits know their truth: the suggested nodes sit exactly on the planted sites (the MLP
for a neuron node), each computing its planted variable (or the same variable under another
name), and no decoy becomes a node. On add_d5_l1_h3_t15K the proposal is the lookahead story in
for_each templates, on the sites of the hand-written specs/addition_1layer_lookahead.yaml and
claiming its classes (S0..S2, those the model answers), loads with the project's loader, reuses
the cached labels, holds when verified, and is the same bytes from the API and the CLI; with --from it is a
unified diff that applies, and the user's file is never written.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import circuitspec as cs
from circuitspec.cli import main
from circuitspec.spec import expand, loads
from circuitspec.testing.planted import PlantParams, plant
from circuitspec.verify.core import verify

torch.set_num_threads(1)

ZOO = "add_d5_l1_h3_t15K_s372001"
PLANTED = [
    (PlantParams(digits=2, n_heads=4, decoy_heads=3, decoy_neurons=2), 3),
    (PlantParams(digits=2, n_heads=3, extra_layers=1, split_prob=0.0, decoy_heads=5, decoy_neurons=3), 11),
]


def _names(labels, site: str) -> set[str]:
    return {n for v in labels.site(site).variables for n in (v.variable, *v.same_as)}


@pytest.mark.parametrize("params,seed", PLANTED)
def test_suggested_nodes_are_the_planted_nodes(params, seed, tmp_path):
    planted = plant(params, seed)
    found = cs.suggest(planted.model, cache_dir=tmp_path)
    labels = cs.label(planted.model, cache_dir=tmp_path)
    proposed = {frozenset(n.sites): n.variables for n in found.verdict.nodes if n.status == "confirmed" and n.node in found.nodes}
    assert len(proposed) == len(found.nodes)
    truth = {}
    for node, sites in planted.truth.items():
        where = [planted.mlp_truth[node]] if planted.kinds[node] == "neurons" else sites
        truth[frozenset(where)] = "{}({})".format(*planted.variables[node])
    assert set(proposed) == set(truth)  # every planted node, and nothing else (no decoy)
    for sites, want in truth.items():
        label_name = min(sites) if len(sites) == 1 else next(s.site for s in labels.sites if set(s.sites) == sites)
        assert want in _names(labels, label_name) and set(proposed[sites]) <= _names(labels, label_name)
    assert loads(found.text).name == f"suggested_{planted.model.name}"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    cache = tmp_path_factory.mktemp("suggest-cache")
    cs.label(ZOO, cache_dir=cache)
    return cache, cs.suggest(ZOO, cache_dir=cache)


def test_zoo_proposal_is_the_lookahead_story_in_templates(zoo):
    _, found = zoo
    assert found.labels_from_cache  # labelled once, by cs.label: suggest reuses the cache
    h = loads(found.text, file="proposed.yaml")
    assert loads(h.to_yaml()) == h  # round trip through the project's own loader and writer
    by_id = {n.id: n for n in h.nodes}
    sa, st = by_id["SA{n}"], by_id["ST{n}"]
    assert (sa.computes, sa.at, sa.for_each, sa.site, sa.layers) == (["SA(n)"], ["predicts A(n)"], {"n": "0..digits-1"}, "head", ["0"])
    assert (st.computes, st.at, st.for_each) == (["ST(n)"], ["predicts A(n+1)"], {"n": "0..digits-1"})
    assert by_id["SV{n}"].at == ["predicts A(n+2)"]  # the look-ahead heads at A2, A3
    mlp = by_id["SA_SS{n}"]  # the MLP reads Sum 9 of the column below, tested with its Carry One held
    assert (mlp.computes, mlp.site, mlp.test.keep) == (["SA(n)", "SS(n-1)"], "mlp", ["SC(n-1)"])
    assert h.explains == ["S0", "S1", "S2"]  # S3+ (cascades) the model answers on 0.68-0.90 of questions
    graph = expand(h, cs.load_model(ZOO).card)
    assert sorted(graph.nodes) == sorted(found.nodes) and len(found.nodes) == 20
    assert sorted(graph.edges) == found.edges and ("SA3", "SA_SS3") in found.edges
    assert [u.split(" ")[0] for u in found.unexplained] == ["P12.L0.H0"]  # it helps only on S3+
    assert "# P14.L0.H1: SA(3) 1.00 [0.99, 1.00] on 256 pairs; serves A3" in found.text


def test_zoo_proposal_sits_where_the_hand_written_spec_does(zoo):
    cache, found = zoo
    hand = verify(str(Path(__file__).parents[1] / "specs" / "addition_1layer_lookahead.yaml"), ZOO, cache_dir=cache)
    proposed = {n.node: n.sites for n in found.verdict.nodes if n.node in found.nodes}
    assert all(n.status == "confirmed" for n in hand.nodes)  # (it fails on edges through the MLP alone)
    assert sorted(map(tuple, proposed.values())) == sorted(tuple(n.sites) for n in hand.nodes)


def test_zoo_proposal_verifies_every_node_and_edge(zoo, tmp_path):
    cache, found = zoo
    spec = tmp_path / "proposed.yaml"
    spec.write_text(found.text)
    v = verify(str(spec), ZOO, cache_dir=cache)
    assert all(n.status == "confirmed" for n in v.nodes) and len(v.nodes) == 20
    assert all(e.status == "confirmed" for e in v.edge_results) and len(v.edge_results) == len(found.edges)
    assert v.status == "holds" and v.metrics.faithfulness.value >= 0.9


def test_cli_writes_the_same_bytes_atomically(zoo, tmp_path, capsys):
    cache, found = zoo
    out = tmp_path / "proposed.yaml"
    assert main(["suggest", ZOO, "--cache-dir", str(cache), "--out", str(out)]) == 0
    assert out.read_text() == found.text
    assert main(["suggest", ZOO, "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out == found.text
    assert [p.name for p in tmp_path.iterdir()] == ["proposed.yaml"]  # no temporary file left


def test_from_spec_is_a_diff_that_applies_and_the_spec_is_untouched(zoo, tmp_path, monkeypatch):
    cache, _ = zoo
    monkeypatch.chdir(tmp_path)
    shutil.copy(Path(__file__).parents[1] / "specs" / "addition_1layer.yaml", "spec.yaml")
    before = hashlib.sha256(open("spec.yaml", "rb").read()).hexdigest()
    found = cs.suggest(ZOO, from_spec="spec.yaml", cache_dir=cache)
    assert hashlib.sha256(open("spec.yaml", "rb").read()).hexdigest() == before
    assert found.text.startswith("--- a/spec.yaml\n+++ b/spec.yaml\n")
    assert set(found.nodes) == {"SV0", "SV1", "ST2", "SV3"}  # only what the spec lacks: the look-ahead heads
    subprocess.run(["git", "apply", "-"], input=found.text.encode(), check=True, cwd=tmp_path)
    patched = cs.load_hypothesis("spec.yaml")
    ids = {n.id for n in patched.nodes}
    assert {"SA{n}", "SC{n}", "A{n}", "SV{n}", "ST2", "SV3"} <= ids  # the user's nodes, and the proposed ones


@pytest.mark.parametrize(
    "args,message",
    [
        (["suggest", "no_such_model_d6"], "unknown model"),
        (["suggest", ZOO, "--from", "missing.yaml"], "spec file not found"),
        (["suggest", ZOO, "--from", "bad.yaml"], "bad.yaml:2"),
        (["suggest", ZOO, "--from", "bad.yaml", "--out", "bad.yaml"], "never rewrites"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: x\ntask: addd\n")
    out = [] if "--out" in args else ["--out", "out.yaml"]
    assert main([*args, *out]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
    assert (tmp_path / "bad.yaml").read_text() == "name: x\ntask: addd\n"
