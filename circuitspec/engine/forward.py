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
  positions only. Where a single position's input to a layer changed (one site, or a
  co-located head set, one layer up), later queries reuse their clean query and mix in
  the one new key (``_attn_one_dirty_key``) instead of attending over every key again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from circuitspec.vocabulary import ModelShape
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
    shape: ModelShape
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
    def from_bridge(cls, bridge, shape: ModelShape) -> "Weights":
        cfg = bridge.cfg
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


CAPTURE_ALL = ("resid_pre", "q", "k", "v", "z", "pattern", "resid_mid", "post", "mlp_out", "attn_out")
# what the patched pass reads from the clean run
CAPTURE_PATCHED = ("resid_pre", "q", "k", "v", "z")


def clean_pass(
    w: Weights,
    tokens: torch.Tensor,
    pred_positions: list[int] | None,
    capture: tuple[str, ...] = CAPTURE_PATCHED,
    track: bool = False,
    answers_only: bool | None = None,
) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """The unpatched model. Returns log-probs [B, P, V] at ``pred_positions`` (all positions if
    None) and the captured activations: name -> one tensor per layer ([B, n_ctx, ...];
    ``resid_pre`` has one more entry, the final residual stream). ``track``: build the
    autograd graph from the embeddings on (for attribution; the weights stay constant).

    ``answers_only`` (default: when nothing is captured): the last layer runs its queries,
    attention output and MLP at ``pred_positions`` only (its keys and values at every position):
    nothing else of it can reach the log-probs. Its captured activations are then NaN at the other
    positions, so a reader that should not look there fails loudly (the patched pass and path
    patching recompute the last layer at answer positions only). Each row and position goes through the same operations either way;
    the matrix products have other shapes, so the CPU's BLAS may round the last bits otherwise
    (on some CPUs, for some batch sizes): the same predictions, log-probs within float32 rounding
    (``tests/test_engine.py`` checks it). A given command always takes the same path, so its JSON
    does not change."""
    n_ctx = tokens.shape[1]
    s = w.shape
    resid = F.embedding(tokens, w.embed) + w.pos[:n_ctx]
    if track:
        resid.requires_grad_(True)
    cache: dict[str, list[torch.Tensor]] = {name: [] for name in capture}
    all_pos = torch.arange(n_ctx, device=tokens.device)
    answers_only = (not capture if answers_only is None else answers_only) and bool(pred_positions)
    at = None  # the positions the current layer computes its outputs at (None: all)

    def keep(name: str, value: torch.Tensor) -> None:
        if name not in cache:
            return
        dim = 2 if name == "pattern" else 1  # the query positions
        if at is not None and value.shape[dim] != n_ctx:  # full size, NaN where the last layer was not run
            full = value.new_full((*value.shape[:dim], n_ctx, *value.shape[dim + 1 :]), float("nan"))
            full.index_copy_(dim, at, value)
            value = full
        cache[name].append(value)

    for i, lw in enumerate(w.layers):
        keep("resid_pre", resid)
        if answers_only and i == len(w.layers) - 1:
            at = torch.tensor(pred_positions, dtype=torch.long, device=tokens.device)
        x = _ln(resid, lw.ln1_w, lw.ln1_b, w.eps)
        q = _heads(F.linear(x if at is None else x[:, at], lw.q_w, lw.q_b), s.n_heads)
        k = _heads(F.linear(x, lw.k_w, lw.k_b), s.n_heads)
        v = _heads(F.linear(x, lw.v_w, lw.v_b), s.n_heads)
        keep("q", q)
        keep("k", k)
        keep("v", v)
        z, pattern = attend(q, k, v, all_pos if at is None else at, w.scale)
        keep("z", z)
        keep("pattern", pattern)
        attn_out = F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        keep("attn_out", attn_out)
        resid = (resid if at is None else resid[:, at]) + attn_out
        keep("resid_mid", resid)
        post = w.act_fn(F.linear(_ln(resid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))
        keep("post", post)
        mlp_out = F.linear(post, lw.out_w, lw.out_b)
        keep("mlp_out", mlp_out)
        resid = resid + mlp_out
    keep("resid_pre", resid)
    final = resid if pred_positions is None or at is not None else resid[:, pred_positions]
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


def _excluding_key(w: Weights, layer: int, p: int, queries: tuple[int, ...], clean: dict[str, list[torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """Clean attention at ``queries`` (all after ``p``) with key ``p`` left out, per question.

    Returns the clean queries [B, Q, H, dh], the log-sum-exp of the other keys' scores
    [B, Q, H], each head's output over the other keys [B, Q, H, d] and their sum plus the
    output bias [B, Q, d]. Attention at q with key p replaced is then a two-way mix:
    weight sigmoid(s'_p - lse) on the new value, the rest on the other keys' average.
    Computing the rest directly (not as clean minus key p) stays exact when a head
    attends almost only to p.
    """
    s = w.shape
    lw = w.layers[layer]
    q_idx = torch.tensor(queries, device=w.device)
    qc = clean["q"][layer][:, q_idx]
    k_len = queries[-1] + 1
    scores = torch.einsum("bqhe,bkhe->bhqk", qc, clean["k"][layer][:, :k_len]) / w.scale
    k_pos = torch.arange(k_len, device=w.device)
    blocked = (k_pos[None, :] > q_idx[:, None]) | (k_pos[None, :] == p)
    scores = scores.masked_fill(blocked, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # [B, H, Q]
    rest = torch.einsum("bhqk,bkhe->bqhe", torch.exp(scores - lse.unsqueeze(-1)), clean["v"][layer][:, :k_len])
    per_head = torch.einsum("bqhe,hed->bqhd", rest, _o_heads(lw, s.n_heads))
    return qc, lse.transpose(1, 2), per_head, per_head.sum(2) + lw.o_b


def _o_heads(lw: LayerWeights, n_heads: int) -> torch.Tensor:
    """W_O split by head: [H, dh, d]."""
    d = lw.o_w.shape[0]
    return lw.o_w.view(d, n_heads, -1).permute(1, 2, 0)


def _attn_one_dirty_key(
    w: Weights, layer: int, p: int, compute: tuple[int, ...], x_p: torch.Tensor, clean: dict[str, list[torch.Tensor]], n_int: int, memo: dict
) -> torch.Tensor:
    """Attention output [rows, C, d] at ``compute`` (all >= p) when only position p's input
    differs from the clean run (``x_p`` [rows, d]). Queries after p keep their clean query
    and see one changed key, so they cost O(H * d) each instead of a projection and a pass
    over every key; position p itself attends with its new query."""
    s = w.shape
    lw = w.layers[layer]
    bc = clean["resid_pre"][0].shape[0]
    xd = _ln(x_p, lw.ln1_w, lw.ln1_b, w.eps)
    k_p = _heads(F.linear(xd, lw.k_w, lw.k_b), s.n_heads).view(n_int, bc, s.n_heads, -1)
    v_p = _heads(F.linear(xd, lw.v_w, lw.v_b), s.n_heads).view(n_int, bc, s.n_heads, -1)
    parts = []
    # Every per-row contraction below is a broadcast product and a sum (or a matmul with
    # rows as its first dimension), so a row's result does not depend on how many
    # interventions share the pass.
    if compute[0] == p:  # the dirty position itself: new query over clean keys 0..p-1 and the new key p
        q_p = _heads(F.linear(xd, lw.q_w, lw.q_b), s.n_heads).view(n_int, bc, s.n_heads, 1, -1)
        old = (q_p * clean["k"][layer][:, :p].transpose(1, 2)).sum(-1)  # [I, B, H, p]
        new = (q_p.squeeze(3) * k_p).sum(-1, keepdim=True)
        pattern = F.softmax(torch.cat([old, new], dim=-1) / w.scale, dim=-1)
        z = (pattern[..., :p, None] * clean["v"][layer][:, :p].transpose(1, 2)).sum(-2) + pattern[..., p:] * v_p
        parts.append(F.linear(z.reshape(n_int * bc, 1, -1), lw.o_w, lw.o_b))
    later = tuple(q for q in compute if q > p)
    if later:
        key = (layer, p, later)
        if key not in memo:
            memo[key] = _excluding_key(w, layer, p, later, clean)
        qc, lse, per_head, rest_sum = memo[key]
        share = torch.sigmoid((qc * k_p.unsqueeze(2)).sum(-1) / w.scale - lse)  # [I, B, Q, H]: weight on the new key
        new_out = torch.bmm(v_p.reshape(-1, s.n_heads, v_p.shape[-1]).transpose(0, 1), _o_heads(lw, s.n_heads))  # [H, rows, d]
        new_out = new_out.transpose(0, 1).reshape(n_int, bc, 1, s.n_heads, -1)
        attn = rest_sum + (share.unsqueeze(-1) * (new_out - per_head)).sum(-2)
        parts.append(attn.reshape(n_int * bc, len(later), -1))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _dirty_attention(
    w: Weights,
    layer: int,
    compute: tuple[int, ...],
    dirty: tuple[int, ...],
    x_c: torch.Tensor,
    out: torch.Tensor,
    clean: dict[str, list[torch.Tensor]],
    patch: tuple[torch.Tensor, torch.Tensor] | None,
    n_int: int,
) -> torch.Tensor:
    """Head outputs z [rows, C, H, dh] at ``compute`` before ``patch``, when the input ``x_c`` at
    the ``dirty`` positions (the previous layer's ``out``) differs from the clean run.

    An intervention whose patch replaces every head at every compute position of this layer (a
    mean-ablated layer, as in most rows of a circuit's complement ablated) needs no query, key or
    attention here: its rows hold the replacement, and only the other interventions attend."""
    s, lw = w.shape, w.layers[layer]
    rows, n_c = x_c.shape[0], len(compute)
    bc = rows // n_int
    need = torch.arange(n_int, device=x_c.device)
    if patch is not None:
        mask, value = patch  # [I, 1, C, H, 1], [I, Bc|1, C, H, dh]
        whole = mask.reshape(n_int, -1).all(-1)
        need = (~whole).nonzero().flatten()
    n_need = len(need)
    z = None
    if n_need < n_int:
        z = torch.empty(n_int, bc, n_c, s.n_heads, s.d_head, dtype=x_c.dtype, device=x_c.device)
        skip = whole.nonzero().flatten()
        z[skip] = value[skip].expand(-1, bc, -1, -1, -1)
        if not n_need:
            return z.view(rows, n_c, s.n_heads, s.d_head)
        x_c = x_c.view(n_int, bc, *x_c.shape[1:])[need].reshape(n_need * bc, *x_c.shape[1:])
        out = out.view(n_int, bc, *out.shape[1:])[need].reshape(n_need * bc, *out.shape[1:])

    def tile(t: torch.Tensor) -> torch.Tensor:
        return t.repeat(n_need, *([1] * (t.dim() - 1)))

    dev = x_c.device
    k_len = compute[-1] + 1
    keep = [i for i, p in enumerate(dirty) if p < k_len]
    d_idx = torch.tensor([dirty[i] for i in keep], device=dev)
    xd = _ln(out[:, keep], lw.ln1_w, lw.ln1_b, w.eps)
    k = tile(clean["k"][layer][:, :k_len])
    v = tile(clean["v"][layer][:, :k_len])
    k[:, d_idx] = _heads(F.linear(xd, lw.k_w, lw.k_b), s.n_heads)
    v[:, d_idx] = _heads(F.linear(xd, lw.v_w, lw.v_b), s.n_heads)
    q = _heads(F.linear(_ln(x_c, lw.ln1_w, lw.ln1_b, w.eps), lw.q_w, lw.q_b), s.n_heads)
    attended, _ = attend(q, k, v, torch.tensor(compute, device=dev), w.scale)
    if z is None:
        return attended
    z[need] = attended.view(n_need, bc, *attended.shape[1:])
    return z.view(rows, n_c, s.n_heads, s.d_head)


def _mlp_out(w: Weights, lw: LayerWeights, mid: torch.Tensor, patch: tuple[torch.Tensor, torch.Tensor] | None, n_int: int) -> torch.Tensor:
    """The MLP's output [rows, C, d] for input ``mid``, with ``patch`` applied to its neurons.

    Where a patch replaces every neuron of an intervention's MLP at a position (a mean-ablated
    MLP: most of them when a circuit's complement is ablated), the output is a function of the
    replacement alone, so that MLP is not computed there: its output is projected from the
    replacement (once per intervention and position when the replacement is the same for every
    question), and only the other MLPs run."""
    if patch is None:
        return F.linear(w.act_fn(F.linear(_ln(mid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b)), lw.out_w, lw.out_b)
    mask, value = patch  # [I, 1, C, M], [I, Bc|1, C, M]
    whole = mask.all(-1).squeeze(1)  # [I, C]
    if not bool(whole.any()):
        post = _apply(w.act_fn(F.linear(_ln(mid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b)), patch, n_int)
        return F.linear(post, lw.out_w, lw.out_b)
    rows = mid.view(n_int, -1, *mid.shape[1:])  # [I, Bc, C, d]
    out = torch.empty_like(rows)
    ii, cc = whole.nonzero(as_tuple=True)
    replaced = F.linear(value[ii, :, cc], lw.out_w, lw.out_b)  # [K, Bc|1, d]
    out[ii, :, cc] = replaced.expand(-1, rows.shape[1], -1)
    ii, cc = (~whole).nonzero(as_tuple=True)
    if len(ii):
        post = w.act_fn(F.linear(_ln(rows[ii, :, cc], lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))  # [K, Bc, M]
        post = torch.where(mask[ii, :, cc], value[ii, :, cc], post)
        out[ii, :, cc] = F.linear(post, lw.out_w, lw.out_b)
    return out.view(mid.shape)


def patched_pass(
    w: Weights,
    plan: Plan,
    clean: dict[str, list[torch.Tensor]],
    n_int: int,
    patches: list[LayerPatch],
    pred_positions: list[int],
    clean_logprobs: torch.Tensor,
    memo: dict | None = None,
) -> torch.Tensor:
    """Log-probs [n_int * Bc, P, V] at ``pred_positions`` for ``n_int`` interventions that
    share ``plan``, each over the Bc questions of the clean cache. ``memo`` keeps
    per-question work that passes over the same clean cache can share."""
    memo = {} if memo is None else memo
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
            x_c = tile(clean["resid_pre"][layer][:, c_idx])
            where = {p: i for i, p in enumerate(dirty)}
            both = [(j, where[p]) for j, p in enumerate(compute) if p in where]
            if both:
                x_c[:, [j for j, _ in both]] = out[:, [i for _, i in both]]
            if len(dirty) == 1 and patch.head is None and compute[0] >= dirty[0]:
                mid = x_c + _attn_one_dirty_key(w, layer, dirty[0], compute, out[:, 0], clean, n_int, memo)
            else:
                z = _apply(_dirty_attention(w, layer, compute, dirty, x_c, out, clean, patch.head, n_int), patch.head, n_int)
                mid = x_c + F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        else:
            x_c = tile(clean["resid_pre"][layer][:, c_idx])
            z = _apply(tile(clean["z"][layer][:, c_idx]), patch.head, n_int)
            mid = x_c + F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        out = mid + _mlp_out(w, lw, mid, patch.post, n_int)
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
