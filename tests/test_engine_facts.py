"""Engine facts (and their cache), probes and neuron attribution, on a trained model."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.engine.attribution import attribute, confirm
from circuitspec.engine.cache import JsonCache, cache_dir
from circuitspec.engine.facts import Facts, FactsParams, probe_sites, stratified_questions
from naive import run_naive
from circuitspec.engine.probe import probe, tricase_clusters
from circuitspec.errors import EngineError
from engine_helpers import engine_model

PARAMS = FactsParams(questions=120, probe_questions=400, tricase_per_case=60)
TINY = FactsParams(questions=24, probe_questions=0, tricase_per_case=0)  # for the cache tests


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return engine_model()


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model.bridge, model.task, seed=0, reference_size=256)


@pytest.fixture(scope="module")
def facts_and_cache(engine, tmp_path_factory):
    cache = JsonCache(tmp_path_factory.mktemp("facts-cache"))
    from circuitspec.engine.facts import load_or_compute

    first = load_or_compute(engine, PARAMS, cache=cache)
    return first, cache


def test_facts_are_cached_and_reused(engine, facts_and_cache):
    from circuitspec.engine.facts import load_or_compute

    first, cache = facts_and_cache
    assert not first.from_cache and cache.misses == 1
    assert cache.path(first.key).exists()
    second = load_or_compute(engine, PARAMS, cache=cache)
    assert second.from_cache and cache.hits == 1
    assert second.to_json() == first.to_json()
    # the same through the Engine method with the folder of that cache
    third = engine.facts(PARAMS, cache_dir=cache.directory)
    assert third.from_cache
    # other parameters are another entry
    other = FactsParams(**{**TINY.model_dump(), "impact_threshold": 0.2})
    assert not load_or_compute(engine, other, cache=cache).from_cache
    assert load_or_compute(engine, other, cache=cache).from_cache


def test_changing_a_weight_invalidates_the_cache(model, engine, facts_and_cache):
    from circuitspec.engine.facts import facts_key, load_or_compute

    first, cache = facts_and_cache
    assert load_or_compute(engine, TINY, cache=cache) is not None
    assert load_or_compute(engine, TINY, cache=cache).from_cache
    bridge = copy.deepcopy(model.bridge)
    with torch.no_grad():
        bridge.state_dict()["blocks.0.mlp.out.bias"][0] += 1e-3
    changed = Engine(bridge, model.task, seed=0, reference_size=256)
    assert changed.weights_hash() != engine.weights_hash()
    assert facts_key(changed, PARAMS) != first.key
    misses = cache.misses
    facts = load_or_compute(changed, TINY, cache=cache)
    assert not facts.from_cache and cache.misses == misses + 1
    assert facts.weights_sha256 == changed.weights_hash()


def test_corrupt_cache_entry_is_recomputed(engine, facts_and_cache, tmp_path):
    from circuitspec.engine.facts import load_or_compute

    from circuitspec.engine.facts import facts_key

    other = JsonCache(tmp_path)
    key = facts_key(engine, TINY)
    other.path(key).parent.mkdir(parents=True, exist_ok=True)
    other.path(key).write_text("{not json")
    facts = load_or_compute(engine, TINY, cache=other)
    assert not facts.from_cache
    assert json.loads(other.path(key).read_text())["key"] == key
    assert load_or_compute(engine, TINY, cache=other).from_cache


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CIRCUITSPEC_CACHE", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("CIRCUITSPEC_CACHE")
    assert cache_dir().name == "circuitspec"


def test_facts_content(engine, facts_and_cache):
    facts, _ = facts_and_cache
    s = engine.shape
    assert len(facts.sites) == s.n_layers * s.n_ctx * (s.n_heads + 1)
    assert [f.site for f in facts.sites] == [str(x) for x in sorted(Site.parse(f.site) for f in facts.sites)]
    useful = facts.useful()
    assert useful and len(useful) < len(facts.sites)
    assert facts.useful_sites == [f.site for f in useful]
    assert facts.useful_positions == sorted({f.position for f in useful})
    # nothing before the first operand's last digit can be useful for addition, and the
    # positions predicting answer digits are
    assert set(facts.useful_positions) >= set(engine.pred_positions[1:])
    for f in facts.sites:
        assert f.useful == (f.failures >= 1)
        assert set(f.impacts) <= set(facts.answer_labels)
        assert set(f.failing_classes) <= set(facts.class_counts)
        if f.kind == "head":
            assert all(a.position <= f.position for a in f.attention)
            assert sum(a.share for a in f.attention) <= 1.0 + 1e-4
        if f.useful:
            assert f.probes, f.site
    # a position's answer-digit head impacts the answer digit it predicts
    late = [f for f in useful if f.position in engine.pred_positions[1:]]
    predicted = {p: lab for p, lab in zip(engine.pred_positions, facts.answer_labels)}
    assert any(predicted[f.position] in f.impacts for f in late)
    # JSON round trip keeps everything
    assert Facts.model_validate_json(facts.to_json()).to_json() == facts.to_json()


def test_facts_agree_with_the_plain_loop(engine, facts_and_cache):
    facts, _ = facts_and_cache
    qs = stratified_questions(engine, PARAMS.questions, PARAMS.seed, "facts")
    worst = sorted(facts.useful(), key=lambda f: -f.failures)[:2] + [f for f in facts.sites if not f.useful][:1]
    out = run_naive(engine, qs, [Intervention("mean", [f.as_site]) for f in worst])
    ok = out.clean.question_correct
    for i, f in enumerate(worst):
        assert int((ok & ~out.question_correct[i]).sum()) == f.failures


def test_facts_deterministic(engine):
    p = FactsParams(questions=24, probe_questions=60, tricase_per_case=10)
    a = engine.facts(p, use_cache=False)
    b = Engine(engine.bridge, engine.task, seed=0, reference_size=256).facts(p, use_cache=False)
    assert a.to_json() == b.to_json()


def test_probe_sites_on_known_encodings(engine):
    # the MLP at the position predicting the units answer digit must encode SA0 (it is A0)
    site = Site.for_mlp(engine.shape.n_layers - 1, engine.layout.predicts(0))
    res = probe_sites(engine, [site], FactsParams(probe_questions=400, tricase_per_case=0))[site]
    assert res["A0"].accuracy > 0.9 > res["A0"].chance
    with pytest.raises(EngineError):
        probe_sites(engine, [Site.for_head(0, engine.shape.n_ctx, 0)])


def test_probe_and_clusters_on_synthetic_data():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600,), generator=g)
    noise = torch.randn(600, 8, generator=g)
    x = noise * 0.1
    x[:, 0] += y.float() * 2  # linearly decodable
    scores = probe(x, {"y": y, "noise": torch.randint(0, 2, (600,), generator=g)}, g)
    assert scores["y"].accuracy > 0.95 and scores["y"].chance < 0.5
    assert scores["noise"].accuracy < 0.65
    blobs = torch.randn(600, 5, generator=g) * 0.2 + torch.eye(5)[y] * 3
    good = tricase_clusters(blobs, y, g)
    assert good.purity > 0.95 and good.distinct
    bad = tricase_clusters(torch.randn(600, 5, generator=g), y, g)
    assert bad.purity < 0.6


def test_neuron_attribution_ranks_exact_effects(engine):
    qs = engine.questions(96, seed=5)
    attr = attribute(engine, qs)
    top = attr.ranked("neurons", 30)
    assert len(top) == 30 and all(top[i][1] <= top[i + 1][1] for i in range(29))
    # within the most affected MLP site, estimates track exact single-neuron ablations
    site = top[0][0]
    cands = [(Site.for_neurons(site.layer, site.position, [i]), float(attr.neurons[site.layer, site.position, i])) for i in range(engine.shape.d_mlp)]
    conf = confirm(engine, qs, cands)
    est = torch.tensor([c.estimate for c in conf])
    exact = torch.tensor([c.effect for c in conf])
    rank = lambda t: t.argsort().argsort().float()  # noqa: E731
    # rank correlation 0.64 on the reference model retrained with hard questions (issue 16), above 0.7
    # on its earlier weights: a linear estimate, useful for ranking, not a substitute for the exact test
    assert torch.corrcoef(torch.stack([rank(est), rank(exact)]))[0, 1] > 0.5
    # the top candidates overall hurt much more than random neurons
    top_exact = torch.tensor([c.effect for c in confirm(engine, qs, top[:20])])
    g = torch.Generator().manual_seed(1)
    rand = [Site.for_neurons(int(torch.randint(0, engine.shape.n_layers, (1,), generator=g)), p, [int(torch.randint(0, engine.shape.d_mlp, (1,), generator=g))]) for p in engine.pred_positions[:5] * 4]
    rand_exact = torch.tensor([c.effect for c in confirm(engine, qs, rand)])
    assert top_exact.mean() < 5 * rand_exact.mean() - 1e-3
    with pytest.raises(EngineError):
        attr.ranked("layers")
    with pytest.raises(EngineError):
        attribute(engine, qs, baseline="median")
