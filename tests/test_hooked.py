"""The engine's hooked fallback: the same outcomes as the fast path where both run, and as the
bridge's own one-site-per-pass loop (``naive``) on models only the fallback runs."""

from __future__ import annotations

import warnings

import pytest
import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.engine.paths import PathPatch, path_patch
from circuitspec.errors import EngineError
from circuitspec.tasks import ArithmeticTask
from engine_helpers import bridge_for
from naive import path_patch_naive, run_naive

KINDS = ("zero", "mean", "resample", "interchange")


def _bridge(digits: int, seed: int = 5, **cfg):
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    base = dict(
        d_model=32, d_head=8, n_layers=2, n_ctx=3 * digits + 4, n_heads=3, d_vocab=15, d_mlp=64, act_fn="relu",
        architecture="TransformerLensNative", seed=seed, normalization_type="LN", positional_embedding_type="standard",
    )
    base.update(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_native(TransformerBridgeConfig(**base))


def _interventions(engine, kind, src):
    sites = engine.sites()
    s = engine.shape
    last = s.n_ctx - 1
    src = src if kind == "interchange" else None
    ivs = [Intervention(kind, [x], source=src) for x in sites[:: max(1, len(sites) // 30)]]
    ivs.append(Intervention(kind, sites[: len(sites) // 2], source=src))
    ivs.append(Intervention(kind, [Site.for_resid(0, 2), Site.for_head(s.n_layers - 1, last - 1, 0)], source=src))
    if s.d_mlp:
        ivs.append(Intervention(kind, [Site.for_neurons(0, last - 3, [0, 5, 7]), Site.for_mlp(s.n_layers - 1, last - 2)], source=src))
    ivs.append(Intervention(kind, [], source=src))
    return ivs


def _same(a, b, atol=1e-4):
    assert torch.equal(a.pred, b.pred)
    assert torch.allclose(a.logprob, b.logprob, atol=atol, rtol=1e-4)
    assert torch.equal(a.clean.pred, b.clean.pred)


@pytest.fixture(scope="module")
def zoo_pair():
    """A shipped 1-layer model on both paths."""
    from circuitspec.models import load

    torch.set_num_threads(1)
    try:
        model = load("add_d5_l1_h3_t15K_s372001")
    except Exception as err:  # no shipped zoo
        pytest.skip(f"no shipped 1-layer model: {err}")
    fast = Engine(model, seed=3, reference_size=128)
    slow = Engine(model, seed=3, reference_size=128, path="hooked")
    return fast, slow


@pytest.mark.parametrize("kind", KINDS)
def test_hooked_equals_fast_on_the_zoo(zoo_pair, kind):
    fast, slow = zoo_pair
    assert (fast.path, slow.path) == ("fast", "hooked")
    qs, src = fast.questions(32, seed=1), fast.questions(32, seed=2)
    ivs = _interventions(fast, kind, src)
    a, b = fast.run(qs, ivs), slow.run(qs, ivs)
    _same(a, b)
    assert (a.pred != a.clean.pred.unsqueeze(0)).any()


def test_hooked_equals_fast_on_path_patching(zoo_pair):
    fast, slow = zoo_pair
    qs, src = fast.questions(24, seed=1), fast.questions(24, seed=2)
    s, eq = fast.shape, fast.layout.equals
    patches = [
        PathPatch(sender=(Site.for_head(0, p, 0),), receiver=(Site.for_mlp(0, p),), frozen=(Site.for_head(0, p, 1),), base=qs, source=src, route=route)
        for p in range(eq, s.n_ctx - 1, 2)
        for route in ("target", "answer")
    ]
    a, b = path_patch(fast, patches), path_patch(slow, patches)
    for x, y in zip(a.logprobs, b.logprobs):
        assert torch.equal(x.argmax(-1), y.argmax(-1))
        assert torch.allclose(x, y, atol=1e-4)


def test_hooked_equals_fast_on_attribution_and_facts_inputs(zoo_pair):
    from circuitspec.engine import attribute

    fast, slow = zoo_pair
    qs = fast.questions(16, seed=1)
    a, b = attribute(fast, qs), attribute(slow, qs)
    assert torch.allclose(a.heads, b.heads, atol=1e-4) and torch.allclose(a.neurons, b.neurons, atol=1e-4)
    for name in ("z", "pattern", "post", "mlp_out", "resid_pre"):
        x, y = fast.clean_pass(qs, None, capture=(name,))[1][name], slow.clean_pass(qs, None, capture=(name,))[1][name]
        assert len(x) == len(y) and all(torch.allclose(p, q, atol=1e-4) for p, q in zip(x, y)), name


@pytest.mark.parametrize("kind", KINDS)
def test_hooked_equals_fast_on_random_weights(kind):
    torch.set_num_threads(1)
    task = ArithmeticTask("add", 2)
    bridge = bridge_for(2, d_model=32, seed=5)
    fast, slow = Engine(bridge, task, reference_size=64), Engine(bridge, task, reference_size=64, path="hooked")
    qs, src = fast.questions(16, seed=1), fast.questions(16, seed=2)
    ivs = _interventions(fast, kind, src)
    _same(fast.run(qs, ivs, keep_logprobs=True), slow.run(qs, ivs, keep_logprobs=True))


ARCHS = {
    "no-norm": dict(normalization_type=None),
    "lnpre-gelu": dict(normalization_type="LNPre", act_fn="gelu"),
    "attn-only": dict(attn_only=True),
    "rms-rotary-silu": dict(normalization_type="RMS", positional_embedding_type="rotary", act_fn="silu"),
    "no-norm-attn-only-gelu_new": dict(normalization_type=None, attn_only=True, act_fn="gelu_new"),
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_other_architectures_take_the_hooked_path(arch):
    """Models the fast path refuses run on the fallback, with the oracle's outcomes, every kind."""
    torch.set_num_threads(1)
    task = ArithmeticTask("add", 2)
    bridge = _bridge(2, **ARCHS[arch])
    e = Engine(bridge, task, reference_size=64)
    assert e.path == "hooked" and e.path_reason
    with pytest.raises(EngineError):
        Engine(bridge, task, path="fast")
    qs, src = e.questions(12, seed=1), e.questions(12, seed=2)
    for kind in KINDS:
        ivs = _interventions(e, kind, src)
        out, oracle = e.run(qs, ivs), run_naive(e, qs, ivs)
        assert torch.equal(out.pred, oracle.pred), kind
        assert torch.allclose(out.logprob, oracle.logprob, atol=1e-4, rtol=1e-4), kind
    heads = [x for x in e.sites() if x.kind == "head"]
    patches = [PathPatch(sender=(heads[0],), receiver=(heads[-1],), frozen=(heads[1],), base=qs, source=src)]
    assert torch.equal(path_patch(e, patches).pred[0], path_patch_naive(e, patches)[0])


def test_attention_only_models_have_no_mlp_sites():
    e = Engine(_bridge(2, attn_only=True), ArithmeticTask("add", 2), reference_size=16)
    assert e.shape.d_mlp == 0 and {s.kind for s in e.sites()} == {"head"}
    with pytest.raises(EngineError, match="attention-only"):
        e.run(e.questions(2), [Intervention("zero", [Site.for_mlp(0, 3)])])
