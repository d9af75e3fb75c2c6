"""Engine: sites, interventions, and the batched runner against the bridge's own hooked loop."""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine import Engine, Intervention, Site, all_sites
from circuitspec.engine.forward import CAPTURE_ALL, Weights, clean_pass
from naive import run_naive
from circuitspec.errors import CircuitSpecError, EngineError
from engine_helpers import bridge_for, engine_model

N_QUESTIONS = 48


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return engine_model()


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model.bridge, model.task, seed=3, reference_size=256)


@pytest.fixture(scope="module")
def questions(engine):
    return engine.questions(N_QUESTIONS, seed=1)


@pytest.fixture(scope="module")
def sources(engine):
    return engine.questions(N_QUESTIONS, seed=2)


# -- sites -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["P16.L0.H1", "P16.L1.MLP", "P16.L1.N[12,907]", "P3.L2.RESID", "P0.L0.N[5]"])
def test_site_prints_and_parses_back(text):
    site = Site.parse(text)
    assert str(site) == text
    assert Site.parse(str(site)) == site
    assert hash(site) == hash(Site.parse(text))


def test_site_constructors_and_order():
    a = Site.for_head(1, 4, 2)
    assert a == Site.parse("P4.L1.H2") and a.hook == "blocks.1.attn.hook_z"
    assert Site.for_neurons(0, 3, [9, 2, 2]).neurons == (2, 9)
    assert Site.for_mlp(0, 3).hook == "blocks.0.mlp.hook_post"
    ordered = sorted([Site.for_mlp(1, 3), Site.for_head(0, 5, 0), Site.for_head(1, 3, 1), Site.for_head(0, 3, 2)])
    assert [str(s) for s in ordered] == ["P3.L0.H2", "P3.L1.H1", "P3.L1.MLP", "P5.L0.H0"]


@pytest.mark.parametrize("text", ["P1.L0", "X3.L0.H1", "P1.L0.H", "P1.L0.N[]", "P-1.L0.MLP", "p1.l0.mlp"])
def test_site_parse_errors(text):
    with pytest.raises(EngineError):
        Site.parse(text)


def test_site_outside_model_is_an_error(engine):
    s = engine.shape
    for bad in [
        Site.for_head(0, s.n_ctx, 0),  # position outside the context
        Site.for_head(0, 1, s.n_heads),  # head out of range
        Site.for_mlp(s.n_layers, 1),  # layer out of range
        Site.for_neurons(0, 1, [s.d_mlp]),  # neuron out of range
    ]:
        with pytest.raises(EngineError) as info:
            bad.check(engine.shape)
        assert isinstance(info.value, CircuitSpecError)
        with pytest.raises(EngineError):
            engine.run(engine.questions(2), [Intervention("zero", [bad])])
    with pytest.raises(EngineError):
        Site("head", 0, 1)  # head site without a head
    with pytest.raises(EngineError):
        Site("attention", 0, 1)


def test_all_sites(engine):
    s = engine.shape
    sites = all_sites(engine.shape)
    assert len(sites) == s.n_ctx * s.n_layers * (s.n_heads + 1)
    assert sites == sorted(sites) and len(set(sites)) == len(sites)
    assert engine.sites(positions=[2]) == [x for x in sites if x.position == 2]


# -- interventions -----------------------------------------------------------------------


def test_intervention_kinds(sources):
    with pytest.raises(EngineError, match="unknown intervention kind"):
        Intervention("ablate", [Site.for_mlp(0, 1)])
    with pytest.raises(EngineError):
        Intervention("interchange", [Site.for_mlp(0, 1)])  # no source
    with pytest.raises(EngineError):
        Intervention("mean", [Site.for_mlp(0, 1)], source=sources)
    iv = Intervention("mean", ["P3.L0.H1", Site.for_mlp(0, 1), "P3.L0.H1"])
    assert iv.sites == (Site.for_mlp(0, 1), Site.parse("P3.L0.H1"))


def test_interchange_source_shape_checked(engine, questions, sources):
    with pytest.raises(EngineError):
        engine.run(questions, [Intervention("interchange", [Site.for_mlp(0, 1)], source=sources[:5])])


# -- the functional forward matches the bridge -------------------------------------------


def test_functional_forward_matches_bridge(model, engine, questions):
    with torch.no_grad():
        logits, cache = model.bridge.run_with_cache(questions)
        lp, mine = clean_pass(Weights.from_bridge(model.bridge, model.shape), questions, None, CAPTURE_ALL)
    assert torch.allclose(lp, logits.log_softmax(-1), atol=1e-4)
    assert torch.equal(lp.argmax(-1), logits.argmax(-1))
    for layer in range(engine.shape.n_layers):
        for name, hook in [("z", "attn.hook_z"), ("pattern", "attn.hook_pattern"), ("post", "mlp.hook_post"), ("resid_pre", "hook_resid_pre")]:
            assert torch.allclose(mine[name][layer], cache[f"blocks.{layer}.{hook}"], atol=1e-4), (layer, name)


def test_engine_runs_on_random_weights_too():
    """Equivalence does not depend on training: an untrained 2-digit bridge, every kind."""
    from circuitspec.tasks import ArithmeticTask

    torch.set_num_threads(1)
    e = Engine(bridge_for(2, d_model=32, seed=5), ArithmeticTask("add", 2), reference_size=64)
    qs, src = e.questions(16, seed=1), e.questions(16, seed=2)
    ivs = [Intervention(k, [s], source=src if k == "interchange" else None) for k in ("zero", "mean", "resample", "interchange") for s in e.sites()[::3]]
    fast, slow = e.run(qs, ivs), run_naive(e, qs, ivs)
    assert torch.equal(fast.pred, slow.pred)
    assert torch.allclose(fast.logprob, slow.logprob, atol=1e-4)


# -- the batched runner equals the one-site-at-a-time loop -------------------------------


def _interventions(engine, kind, sources):
    src = sources if kind == "interchange" else None
    sites = engine.sites()
    single = [Intervention(kind, [s], source=src) for s in sites[:: max(1, len(sites) // 40)]]
    s = engine.shape
    last = s.n_ctx - 1
    multi = [
        Intervention(kind, sites[: len(sites) // 2], source=src),  # hundreds of sites in one intervention
        Intervention(kind, [Site.for_neurons(0, last - 3, [0, 5, 7]), Site.for_resid(s.n_layers - 1, last - 2)], source=src),
        Intervention(kind, [Site.for_resid(0, 2), Site.for_head(s.n_layers - 1, last - 1, 0), Site.for_mlp(0, last)], source=src),
        Intervention(kind, [Site.for_mlp(0, last)], source=src),  # the last token feeds nothing
        Intervention(kind, [], source=src),  # no sites: the clean model
    ]
    return single + multi


@pytest.mark.parametrize("kind", ["zero", "mean", "resample", "interchange"])
def test_batched_runner_equals_plain_loop(engine, questions, sources, kind):
    ivs = _interventions(engine, kind, sources)
    fast = engine.run(questions, ivs, keep_logprobs=True)
    slow = run_naive(engine, questions, ivs)
    assert fast.pred.shape == (len(ivs), N_QUESTIONS, len(engine.answer_positions))
    assert torch.equal(fast.pred, slow.pred)
    assert torch.equal(fast.correct, slow.correct)
    assert torch.allclose(fast.logprob, slow.logprob, atol=1e-4, rtol=1e-4)
    assert torch.equal(fast.clean.pred, slow.clean.pred)
    # the interventions did something (the check above is not vacuous)
    assert (fast.pred != fast.clean.pred.unsqueeze(0)).any()
    # the last two (last token only, no sites) are the clean model
    assert torch.allclose(fast.logprob[-2:], fast.clean.logprob.expand(2, -1, -1))


@pytest.mark.parametrize("kind", ["mean", "interchange"])
def test_complement_ablations_equal_plain_loop(engine, questions, sources, kind):
    """A circuit's complement ablated (faithfulness, the gap report): the fast path computes no
    head or MLP whose every output the patch replaces, and must still equal the plain loop,
    also where a layer keeps some heads or an MLP keeps some neurons."""
    src = sources if kind == "interchange" else None
    sites = engine.sites()
    s = engine.shape
    mlp = Site.for_mlp(0, s.n_ctx - 3)
    rest = Site.for_neurons(0, s.n_ctx - 3, [n for n in range(s.d_mlp) if n % 5])  # the MLP keeps neurons 0, 5, 10, ...
    ivs = [Intervention(kind, [x for x in sites if x != keep], source=src) for keep in sites[:: max(1, len(sites) // 12)]]
    ivs += [
        Intervention(kind, [x for x in sites if x.layer != 0 or x.position % 3], source=src),  # layer 0 keeps a third
        Intervention(kind, [x for x in sites if x.kind == "mlp"], source=src),  # every MLP, no head
        Intervention(kind, [x for x in sites if x.kind == "head" and x.head != 1], source=src),  # every head but one per place
        Intervention(kind, [x for x in sites if x != mlp] + [rest], source=src),
        Intervention(kind, sites, source=src),
    ]
    fast = engine.run(questions, ivs)
    slow = run_naive(engine, questions, ivs)
    assert torch.equal(fast.pred, slow.pred)
    assert torch.allclose(fast.logprob, slow.logprob, atol=1e-4, rtol=1e-4)
    assert (fast.pred != fast.clean.pred.unsqueeze(0)).any()


def test_chunking_does_not_change_results(model, engine, questions, sources):
    ivs = _interventions(engine, "interchange", sources) + _interventions(engine, "mean", sources)
    small = Engine(model.bridge, model.task, seed=3, reference_size=256, memory_budget=2**20)
    a, b = engine.run(questions, ivs), small.run(questions, ivs)
    assert b.stats["passes"] > a.stats["passes"]
    assert torch.equal(a.pred, b.pred)
    assert torch.allclose(a.logprob, b.logprob, atol=1e-5)


def test_answers_only_clean_pass_gives_the_full_pass(engine, questions):
    """With nothing captured, the last layer runs at the answer-predicting positions only; the
    answers are those of the full pass and the log-probs agree to float32 rounding, for any batch
    size (the bits may differ where the BLAS picks another kernel for the smaller products)."""
    for rows in (questions[:1], questions[:7], questions):
        fast, _ = clean_pass(engine.weights, rows, engine.pred_positions, capture=())
        full, _ = clean_pass(engine.weights, rows, engine.pred_positions, capture=("z",))
        assert torch.equal(fast.argmax(-1), full.argmax(-1))
        assert torch.allclose(fast, full, rtol=0, atol=1e-5)


def test_recalled_clean_passes_give_the_same_outcomes(model, questions, sources):
    """A run reuses the clean passes of questions and sources it has seen, whole (a copy of the
    tokens hits too) or row by row from the passes of ``clean(recall=...)`` over parts of them,
    and gives the same bits as an engine that recalls nothing."""
    recalls = Engine(model.bridge, model.task, seed=3, reference_size=256)
    never = Engine(model.bridge, model.task, seed=3, reference_size=256, recall_budget=0)
    ivs = _interventions(recalls, "interchange", sources)
    plain = never.run(questions, ivs)
    assert never.recall.hits == 0
    # the rows of both batches, checked in two parts each and in another order
    half = len(questions) // 2
    for part in (slice(half, None), slice(None, half)):
        assert torch.equal(recalls.clean(questions[part], recall="questions").logprobs, never.clean(questions[part]).logprobs)
        recalls.clean(sources[part], recall="sources")
    misses = recalls.recall.misses
    first = recalls.run(questions, ivs)
    again = recalls.run(questions.clone(), [Intervention("interchange", iv.sites, source=sources.clone()) for iv in ivs])
    assert recalls.recall.misses == misses and recalls.recall.hits >= 4
    for out in (first, again):
        assert torch.equal(out.pred, plain.pred) and torch.equal(out.logprob, plain.logprob)
    with pytest.raises(EngineError):
        recalls.clean(questions, recall="nothing")


# -- sanity checks of the plumbing -------------------------------------------------------


def test_interchange_with_itself_changes_nothing(engine, questions):
    sites = engine.sites()
    ivs = [Intervention("interchange", [s], source=questions.clone()) for s in sites[::5]]
    ivs.append(Intervention("interchange", sites, source=questions.clone()))
    out = engine.run(questions, ivs)
    assert torch.equal(out.pred, out.clean.pred.expand_as(out.pred))
    assert torch.allclose(out.logprob, out.clean.logprob.expand_as(out.logprob), atol=1e-5)


def test_zeroing_every_site_of_a_layer_zeroes_the_layer(model, engine, questions):
    """Zero-ablating every head and MLP site of layer L leaves only the layer's biases
    in its outputs: compare with hooks that overwrite the layer's attention and MLP outputs."""
    for layer in range(engine.shape.n_layers):
        iv = Intervention("zero", engine.sites(layers=[layer]))
        out = engine.run(questions, [iv])
        sd = model.bridge.state_dict()
        o_b, mlp_b = sd[f"blocks.{layer}.attn.o.bias"], sd[f"blocks.{layer}.mlp.out.bias"]
        hooks = [
            (f"blocks.{layer}.hook_attn_out", lambda x, hook, b=o_b: b.expand_as(x).clone()),
            (f"blocks.{layer}.hook_mlp_out", lambda x, hook, b=mlp_b: b.expand_as(x).clone()),
        ]
        with torch.no_grad():
            logits = model.bridge.run_with_hooks(questions, fwd_hooks=hooks)
        lp = logits[:, engine.pred_positions].log_softmax(-1)
        assert torch.equal(out.pred[0], lp.argmax(-1))
        assert torch.allclose(out.logprob[0], lp.gather(-1, out.gold.unsqueeze(-1)).squeeze(-1), atol=1e-4)
        assert out.failure_rate[0] > 0.5  # a whole layer gone breaks the model


def test_clean_model_is_accurate(engine, questions):
    assert engine.clean(questions).question_correct.float().mean() > 0.95


def test_targets_and_logprobs(engine, questions, sources):
    ivs = _interventions(engine, "mean", sources)[:6]
    wrong = (engine.task.answers(questions) + 1) % 10
    out = engine.run(questions, ivs, targets=wrong, keep_logprobs=True)
    assert torch.allclose(out.target_logprob, out.logprob_of(wrong))
    assert torch.equal(out.target_match, out.matches(wrong))
    assert torch.allclose(out.logprob_of(out.gold), out.logprob)
    plain = engine.run(questions, ivs)
    with pytest.raises(EngineError):
        plain.logprob_of(wrong)
    with pytest.raises(EngineError):
        engine.run(questions, ivs, targets=wrong[:3])


def test_resample_is_seeded(engine, questions):
    site = [Site.for_head(0, engine.layout.equals, h) for h in range(engine.shape.n_heads)]
    a = engine.run(questions, [Intervention("resample", site, seed=1), Intervention("resample", site, seed=2)], keep_logprobs=True)
    b = engine.run(questions, [Intervention("resample", site, seed=1)], keep_logprobs=True)
    # the same draw; batches of another shape may round differently in BLAS, so not bit-equal
    assert torch.allclose(a.logprobs[0], b.logprobs[0], atol=1e-4)
    assert not torch.allclose(a.logprobs[0], a.logprobs[1], atol=1e-2)


def test_reference_set_is_disjoint(engine, questions):
    assert not engine.reference_overlap(questions).any()
    out = engine.run(engine.reference[:4], [Intervention("mean", [Site.for_mlp(0, 1)])])
    assert out.reference_overlap == 4
