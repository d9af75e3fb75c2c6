"""A functional forward pass over a bridge's weights, and the patched suffix pass.

The engine's fast path. ``tests/test_engine.py`` proves it matches the bridge's own
hooked forward (same activations and predictions, log-probs within float tolerance).

Two passes:

- ``clean_pass``: the whole model over a batch, returning the activations the engine
  caches (residual stream before each layer, keys, values, head outputs, ...) and
  the log-probs at the positions that predict answer tokens.
- ``patched_pass``: rows that share a ``Plan`` (the layer where their interventions
  start and the positions each later layer must recompute) restart from the clean
  residual stream, recompute only those positions (earlier positions and layers cannot
  change) and apply per-row masks at the patch points. Logits are formed at answer
  positions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from circuitspec.engine.sites import Shape
from circuitspec.errors import EngineError

_ACT = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


@dataclass
class LayerWeights:
    ln1_w: torch.Tensor
    ln1_b: torch.Tensor
    q_w: torch.Tensor  # [H*dh, d]
    q_b: torch.Tensor
    k_w: torch.Tensor
    k_b: torch.Tensor
    v_w: torch.Tensor
    v_b: torch.Tensor
    o_w: torch.Tensor  # [d, H*dh]
    o_b: torch.Tensor
    ln2_w: torch.Tensor
    ln2_b: torch.Tensor
    in_w: torch.Tensor  # [d_mlp, d]
    in_b: torch.Tensor
    out_w: torch.Tensor  # [d, d_mlp]
    out_b: torch.Tensor


@dataclass
class Weights:
    shape: Shape
    embed: torch.Tensor  # [V, d]
    pos: torch.Tensor  # [n_ctx, d]
    layers: list[LayerWeights]
    lnf_w: torch.Tensor
    lnf_b: torch.Tensor
    unembed_w: torch.Tensor  # [V, d]
    unembed_b: torch.Tensor
    eps: float
    act: str
    scale: float
    state: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    @classmethod
    def from_bridge(cls, bridge) -> "Weights":
        cfg = bridge.cfg
        shape = Shape.of(cfg)
        problems = []
        if getattr(cfg, "normalization_type", "LN") != "LN":
            problems.append(f"normalization_type={cfg.normalization_type!r} (need 'LN')")
        if getattr(cfg, "positional_embedding_type", "standard") != "standard":
            problems.append(f"positional_embedding_type={cfg.positional_embedding_type!r} (need 'standard')")
        act = str(getattr(cfg, "act_fn", "relu") or "gelu").lower()
        if act not in _ACT:
            problems.append(f"act_fn={act!r} (supported: {', '.join(sorted(_ACT))})")
        for flag in ("attn_only", "gated_mlp", "parallel_attn_mlp", "use_qk_norm"):
            if getattr(cfg, flag, False):
                problems.append(f"{flag}=True")
        if (getattr(cfg, "n_key_value_heads", None) or cfg.n_heads) != cfg.n_heads:
            problems.append("grouped-query attention")
        if getattr(cfg, "attn_scores_soft_cap", -1.0) > 0 or getattr(cfg, "output_logits_soft_cap", -1.0) > 0:
            problems.append("soft-capped attention or logits")
        if problems:
            raise EngineError("the engine cannot run this model: " + "; ".join(problems))
        if getattr(cfg, "use_attn_scale", True) and getattr(cfg, "attn_scale", -1.0) > 0:
            scale = float(cfg.attn_scale)
        else:
            scale = math.sqrt(cfg.d_head)
        sd = {k: v.detach() for k, v in bridge.state_dict().items()}

        def get(key: str) -> torch.Tensor:
            try:
                return sd[key]
            except KeyError:
                raise EngineError(f"the model's weights have no {key!r}", hint="is this a TransformerLensNative bridge?") from None

        layers = []
        for layer in range(shape.n_layers):
            b = f"blocks.{layer}."
            layers.append(
                LayerWeights(
                    *(
                        get(b + name)
                        for name in (
                            "ln1.weight", "ln1.bias",
                            "attn.q.weight", "attn.q.bias", "attn.k.weight", "attn.k.bias",
                            "attn.v.weight", "attn.v.bias", "attn.o.weight", "attn.o.bias",
                            "ln2.weight", "ln2.bias",
                            "mlp.in.weight", "mlp.in.bias", "mlp.out.weight", "mlp.out.bias",
                        )
                    )
                )
            )
        return cls(
            shape=shape,
            embed=get("embed.weight"),
            pos=get("pos_embed.weight"),
            layers=layers,
            lnf_w=get("ln_final.weight"),
            lnf_b=get("ln_final.bias"),
            unembed_w=get("unembed.weight"),
            unembed_b=get("unembed.bias"),
            eps=float(getattr(cfg, "eps", 1e-5)),
            act=act,
            scale=scale,
            state=sd,
        )

    @property
    def device(self) -> torch.device:
        return self.embed.device

    def act_fn(self, x: torch.Tensor) -> torch.Tensor:
        return _ACT[self.act](x)


# -- building blocks ----------------------------------------------------------------


def _ln(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    return x.view(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention for queries at positions ``q_pos`` over keys 0..k_len-1.

    q: [R, Q, H, dh]; k, v: [R, K, H, dh]. Returns z [R, Q, H, dh] and pattern [R, H, Q, K].
    """
    qh = q.transpose(1, 2)
    kh = k.transpose(1, 2)
    scores = torch.matmul(qh, kh.transpose(-2, -1)) / scale
    k_pos = torch.arange(k.shape[1], device=q.device)
    blocked = k_pos[None, :] > q_pos[:, None]  # [Q, K]
    scores = scores.masked_fill(blocked, float("-inf"))
    pattern = F.softmax(scores, dim=-1)
    z = torch.matmul(pattern, v.transpose(1, 2)).transpose(1, 2)
    return z, pattern


def final_logprobs(w: Weights, resid: torch.Tensor) -> torch.Tensor:
    x = _ln(resid, w.lnf_w, w.lnf_b, w.eps)
    return F.log_softmax(F.linear(x, w.unembed_w, w.unembed_b), dim=-1)


CAPTURE_ALL = ("resid_pre", "k", "v", "z", "pattern", "resid_mid", "post", "mlp_out", "attn_out")


def clean_pass(
    w: Weights,
    tokens: torch.Tensor,
    pred_positions: list[int] | None,
    capture: tuple[str, ...] = ("resid_pre", "k", "v", "z"),
    track: bool = False,
) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """The unpatched model. Returns log-probs [B, P, V] at ``pred_positions`` (all positions if
    None) and the captured activations: name -> one tensor per layer ([B, n_ctx, ...];
    ``resid_pre`` has one more entry, the final residual stream). ``track``: build the
    autograd graph from the embeddings on (for attribution; the weights stay constant)."""
    n_ctx = tokens.shape[1]
    s = w.shape
    resid = F.embedding(tokens, w.embed) + w.pos[:n_ctx]
    if track:
        resid.requires_grad_(True)
    cache: dict[str, list[torch.Tensor]] = {name: [] for name in capture}
    q_pos = torch.arange(n_ctx, device=tokens.device)

    def keep(name: str, value: torch.Tensor) -> None:
        if name in cache:
            cache[name].append(value)

    for lw in w.layers:
        keep("resid_pre", resid)
        x = _ln(resid, lw.ln1_w, lw.ln1_b, w.eps)
        q = _heads(F.linear(x, lw.q_w, lw.q_b), s.n_heads)
        k = _heads(F.linear(x, lw.k_w, lw.k_b), s.n_heads)
        v = _heads(F.linear(x, lw.v_w, lw.v_b), s.n_heads)
        keep("k", k)
        keep("v", v)
        z, pattern = attend(q, k, v, q_pos, w.scale)
        keep("z", z)
        keep("pattern", pattern)
        attn_out = F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        keep("attn_out", attn_out)
        resid = resid + attn_out
        keep("resid_mid", resid)
        post = w.act_fn(F.linear(_ln(resid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))
        keep("post", post)
        mlp_out = F.linear(post, lw.out_w, lw.out_b)
        keep("mlp_out", mlp_out)
        resid = resid + mlp_out
    keep("resid_pre", resid)
    final = resid if pred_positions is None else resid[:, pred_positions]
    return final_logprobs(w, final), cache


# -- the patched suffix pass ----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Where a group of interventions starts and what each layer must recompute.

    ``compute[j]`` are the positions whose outputs layer ``start + j`` recomputes;
    ``dirty[j]`` the positions whose input to that layer differs from the clean run
    (their keys and values are recomputed; empty for the start layer).
    """

    start: int
    compute: tuple[tuple[int, ...], ...]
    dirty: tuple[tuple[int, ...], ...]

    @property
    def is_noop(self) -> bool:
        return not any(self.compute)


def make_plan(site_layers_positions: list[tuple[int, int]], n_layers: int, n_ctx: int, pred_positions: list[int]) -> Plan:
    """The plan for an intervention on sites at these (layer, position) pairs.

    A site at (L, p) cannot change layers before L nor positions before p. In layer L
    only the site positions change; from then on every position from the smallest
    changed one onwards. The last layer only matters at answer-predicting positions,
    the last token never matters.
    """
    if not site_layers_positions:
        return Plan(n_layers, (), ())
    by_layer: dict[int, set[int]] = {}
    for layer, pos in site_layers_positions:
        by_layer.setdefault(layer, set()).add(pos)
    start = min(by_layer)
    pred = set(pred_positions)
    compute: list[tuple[int, ...]] = []
    dirty_list: list[tuple[int, ...]] = []
    dirty: tuple[int, ...] = ()
    for layer in range(start, n_layers):
        last = layer == n_layers - 1
        needed = (lambda p: p in pred) if last else (lambda p: p < n_ctx - 1)
        sites = by_layer.get(layer, set())
        if dirty:
            lo = min(set(dirty) | sites)
            c = tuple(p for p in range(lo, n_ctx) if needed(p))
        else:
            c = tuple(sorted(p for p in sites if needed(p)))
        compute.append(c)
        dirty_list.append(dirty)
        dirty = c
    if not any(compute):
        return Plan(n_layers, (), ())
    return Plan(start, tuple(compute), tuple(dirty_list))


@dataclass
class LayerPatch:
    """Per-row replacements at one layer, for the plan's compute positions of that layer.

    Each present entry is (mask, value); masks broadcast against [I, Bc, P, ...] and
    values against the same shape (rows are intervention-major: row = i * Bc + b).
    """

    head: tuple[torch.Tensor, torch.Tensor] | None = None  # mask [I,1,P,H,1], value [I,Bc|1,P,H,dh]
    post: tuple[torch.Tensor, torch.Tensor] | None = None  # mask [I,1,P,M], value [I,Bc|1,P,M]
    resid: tuple[torch.Tensor, torch.Tensor] | None = None  # mask [I,1,P,1], value [I,Bc|1,P,d]


def _apply(x: torch.Tensor, patch: tuple[torch.Tensor, torch.Tensor] | None, n_int: int) -> torch.Tensor:
    if patch is None:
        return x
    mask, value = patch
    shaped = x.reshape(n_int, -1, *x.shape[1:])
    return torch.where(mask, value, shaped).reshape(x.shape)


def patched_pass(
    w: Weights,
    plan: Plan,
    clean: dict[str, list[torch.Tensor]],
    n_int: int,
    patches: list[LayerPatch],
    pred_positions: list[int],
    clean_logprobs: torch.Tensor,
) -> torch.Tensor:
    """Log-probs [n_int * Bc, P, V] at ``pred_positions`` for ``n_int`` interventions that
    share ``plan``, each over the Bc questions of the clean cache."""
    s = w.shape
    bc = clean["resid_pre"][0].shape[0]
    rows = n_int * bc
    first = plan.start

    def tile(t: torch.Tensor) -> torch.Tensor:  # [Bc, ...] -> a fresh [rows, ...]
        return t.repeat(n_int, *([1] * (t.dim() - 1)))

    out = None  # the last computed layer's output at its compute positions
    prev: tuple[int, ...] = ()
    for j, (compute, dirty) in enumerate(zip(plan.compute, plan.dirty)):
        layer = first + j
        lw = w.layers[layer]
        patch = patches[j]
        if not compute:
            out, prev = None, ()
            continue
        dev = clean["resid_pre"][0].device
        c_idx = torch.tensor(compute, device=dev)
        if dirty:
            # this layer's input is clean except at the dirty positions, where it is the
            # previous layer's output ``out`` (dirty == the previous layer's compute positions)
            assert tuple(dirty) == prev
            k_len = compute[-1] + 1
            keep = [i for i, p in enumerate(dirty) if p < k_len]
            d_idx = torch.tensor([dirty[i] for i in keep], device=dev)
            xd = _ln(out[:, keep], lw.ln1_w, lw.ln1_b, w.eps)
            k = tile(clean["k"][layer][:, :k_len])
            v = tile(clean["v"][layer][:, :k_len])
            k[:, d_idx] = _heads(F.linear(xd, lw.k_w, lw.k_b), s.n_heads)
            v[:, d_idx] = _heads(F.linear(xd, lw.v_w, lw.v_b), s.n_heads)
            x_c = tile(clean["resid_pre"][layer][:, c_idx])
            where = {p: i for i, p in enumerate(dirty)}
            both = [(j, where[p]) for j, p in enumerate(compute) if p in where]
            if both:
                x_c[:, [j for j, _ in both]] = out[:, [i for _, i in both]]
            q = _heads(F.linear(_ln(x_c, lw.ln1_w, lw.ln1_b, w.eps), lw.q_w, lw.q_b), s.n_heads)
            z, _ = attend(q, k, v, c_idx, w.scale)
        else:
            x_c = tile(clean["resid_pre"][layer][:, c_idx])
            z = tile(clean["z"][layer][:, c_idx])
        z = _apply(z, patch.head, n_int)
        mid = x_c + F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        post = w.act_fn(F.linear(_ln(mid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))
        post = _apply(post, patch.post, n_int)
        out = mid + F.linear(post, lw.out_w, lw.out_b)
        out = _apply(out, patch.resid, n_int)
        prev = compute

    # Logits only where the last layer recomputed; elsewhere the clean ones stand.
    out_lp = tile(clean_logprobs)
    if out is not None:
        where = {p: c for c, p in enumerate(plan.compute[-1])}
        changed = [i for i, p in enumerate(pred_positions) if p in where]
        if changed:
            cols = torch.tensor([where[pred_positions[i]] for i in changed], device=out.device)
            out_lp[:, changed] = final_logprobs(w, out[:, cols])
    return out_lp
