"""The TransformerLens checkpoint format (a HookedTransformer-style state dict), both ways.

``to_tl`` and ``from_tl`` convert between the bridge's state dict (``models.build``) and
TransformerLens's names and layouts (W_Q [n_heads, d_model, d_head], W_in [d_model, d_mlp], ...)
for every ``Architecture``: normalization LN (``ln1.w``, ``ln1.b``), RMS (``ln1.w``), LNPre or
none (no weights), attention-only blocks (no ``mlp.*``, no ``ln2``), learned positions
(``pos_embed.W_pos``) or rotary ones (the ``attn.rotary_sin`` / ``rotary_cos`` buffers,
which give ``n_ctx``). ``tl_architecture`` reads the architecture from the weights and refuses,
with the reason, what no supported architecture fits (gated MLPs, grouped-query attention,
partial rotary, ...).
"""

from __future__ import annotations

import torch
from pydantic import ValidationError

from circuitspec.errors import ModelError
from circuitspec.models.build import expected_shapes
from circuitspec.models.card import Architecture
from circuitspec.models.store import check_finite, problems_text

# buffers a HookedTransformer state dict carries; they hold no learned weights
_BUFFERS = ("IGNORE", "mask", "rotary_sin", "rotary_cos")
ROTARY_BASE = 10_000


def rotary_tables(n_ctx: int, dim: int, base: int = ROTARY_BASE) -> tuple[torch.Tensor, torch.Tensor]:
    """TransformerLens's rotary buffers [n_ctx, dim]: sin and cos of position / base^(2i / dim),
    each frequency repeated for the two halves of the head."""
    freq = base ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2))
    angles = torch.arange(n_ctx, dtype=torch.float32)[:, None] / freq.repeat(2)[None, :]
    return torch.sin(angles), torch.cos(angles)


def _convert(key: str, t: torch.Tensor, arch: Architecture, to_tl: bool) -> tuple[str, torch.Tensor]:
    """One weight's TransformerLens name and layout (``to_tl``), or back."""
    h, dh, d = arch.n_heads, arch.d_head, arch.d_model
    parts = key.split(".")
    if key in ("embed.weight", "embed.W_E"):
        return ("embed.W_E" if to_tl else "embed.weight"), t
    if key in ("pos_embed.weight", "pos_embed.W_pos"):
        return ("pos_embed.W_pos" if to_tl else "pos_embed.weight"), t
    if parts[0] == "unembed":
        if parts[1] in ("weight", "W_U"):
            return ("unembed.W_U" if to_tl else "unembed.weight"), t.T
        return ("unembed.b_U" if to_tl else "unembed.bias"), t
    prefix, name = ".".join(parts[:-1]), parts[-1]
    if prefix.endswith(("ln1", "ln2", "ln_final")):
        pair = {"weight": "w", "bias": "b"} if to_tl else {"w": "weight", "b": "bias"}
        return f"{prefix}.{pair[name]}", t
    block = ".".join(parts[:2])
    if to_tl:
        sub, what = parts[-2], parts[-1]
        if sub in ("q", "k", "v"):
            P = sub.upper()
            if what == "weight":
                return f"{block}.attn.W_{P}", t.reshape(h, dh, d).transpose(1, 2)
            return f"{block}.attn.b_{P}", t.reshape(h, dh)
        if sub == "o":
            return (f"{block}.attn.W_O", t.T.reshape(h, dh, d)) if what == "weight" else (f"{block}.attn.b_O", t)
        tl = {("in", "weight"): "W_in", ("in", "bias"): "b_in", ("out", "weight"): "W_out", ("out", "bias"): "b_out"}[(sub, what)]
        return f"{block}.mlp.{tl}", t.T if what == "weight" else t
    if name in ("W_Q", "W_K", "W_V"):
        return f"{block}.attn.{name[-1].lower()}.weight", t.transpose(1, 2).reshape(h * dh, d)
    if name in ("b_Q", "b_K", "b_V"):
        return f"{block}.attn.{name[-1].lower()}.bias", t.reshape(h * dh)
    if name == "W_O":
        return f"{block}.attn.o.weight", t.reshape(h * dh, d).T
    if name == "b_O":
        return f"{block}.attn.o.bias", t
    back = {"W_in": ("in", "weight"), "b_in": ("in", "bias"), "W_out": ("out", "weight"), "b_out": ("out", "bias")}[name]
    return f"{block}.mlp.{back[0]}.{back[1]}", t.T if name.startswith("W") else t


def to_tl(tensors: dict[str, torch.Tensor], arch: Architecture) -> dict[str, torch.Tensor]:
    """Bridge state dict -> HookedTransformer-style state dict. A rotary model also gets each
    block's ``attn.rotary_sin`` / ``rotary_cos`` buffers, as a HookedTransformer carries them."""
    out = dict(_convert(k, tensors[k], arch, to_tl=True) for k in expected_shapes(arch))
    if arch.positional_embedding == "rotary":
        sin, cos = rotary_tables(arch.n_ctx, arch.d_head)
        for layer in range(arch.n_layers):
            out[f"blocks.{layer}.attn.rotary_sin"], out[f"blocks.{layer}.attn.rotary_cos"] = sin, cos
    return {k: v.contiguous().clone() for k, v in out.items()}


def _refuse(reason: str, where: str, hint: str | None = None) -> ModelError:
    return ModelError(
        f"TransformerLens checkpoint does not fit a supported architecture: {reason}",
        file=where,
        hint=hint or "supported: normalization LN / LNPre / RMS / none, attention-only or not, learned or rotary positions, "
        "relu / gelu / gelu_new / silu MLPs, untied embeddings",
    )


def _positions(tl: dict[str, torch.Tensor], d_head: int, where: str) -> tuple[str, int]:
    """(positional embedding, n_ctx) from the weights."""
    if "pos_embed.W_pos" in tl:
        return "standard", int(tl["pos_embed.W_pos"].shape[0])
    sin = tl.get("blocks.0.attn.rotary_sin")
    if sin is None:
        raise _refuse("no pos_embed.W_pos and no rotary buffers (blocks.0.attn.rotary_sin): the positional embedding cannot be read", where)
    if sin.dim() != 2 or sin.shape[1] != d_head:
        raise _refuse(f"rotary over {sin.shape[-1]} of the head's {d_head} dimensions (partial rotary)", where)
    if not torch.allclose(sin.float(), rotary_tables(sin.shape[0], d_head)[0], atol=1e-4):
        raise _refuse(f"rotary tables that are not TransformerLens's with base {ROTARY_BASE}", where)
    return "rotary", int(sin.shape[0])


def _normalization(tl: dict[str, torch.Tensor], given: str | None, where: str) -> str | None:
    """LN or RMS from the weights; without norm weights, ``given`` says LNPre or none."""
    if "blocks.0.ln1.w" in tl:
        found = "LN" if "blocks.0.ln1.b" in tl else "RMS"
        if given not in (None, found):
            raise _refuse(f"normalization {given!r} was given, but the weights hold {found} weights (blocks.0.ln1.*)", where)
        return found
    if given in ("LN", "RMS"):
        raise _refuse(f"normalization {given!r} was given, but the checkpoint has no blocks.0.ln1.w", where)
    return given


def tl_architecture(tl: dict[str, torch.Tensor], where: str, act_fn: str = "relu", normalization: str | None = None) -> Architecture:
    """The architecture a TransformerLens state dict's keys and shapes describe. Weights cannot
    tell the MLP's activation (``act_fn``) nor LNPre from no normalization (``normalization``)."""
    try:
        W_E, W_Q = tl["embed.W_E"], tl["blocks.0.attn.W_Q"]
    except KeyError as err:
        raise ModelError(
            f"not a TransformerLens state dict: no {err.args[0]!r}",
            file=where,
            hint="expected keys like embed.W_E, blocks.0.attn.W_Q (a HookedTransformer state_dict())",
        ) from None
    layers = {k.split(".")[1] for k in tl if k.startswith("blocks.")}
    if not all(x.isdigit() for x in layers) or (W_E.dim(), W_Q.dim()) != (2, 3):
        raise ModelError(
            "not a TransformerLens state dict: block numbers or tensor ranks are not a HookedTransformer's",
            file=where,
            hint="expected blocks.0..blocks.N with W_E [d_vocab, d_model], W_Q [n_heads, d_model, d_head]",
        )
    if any(k.endswith("mlp.W_gate") for k in tl):
        raise _refuse("a gated MLP (mlp.W_gate)", where)
    if any(k.endswith(("attn._W_K", "attn._W_V")) for k in tl) or tl.get("blocks.0.attn.W_K", W_Q).shape[0] != W_Q.shape[0]:
        raise _refuse("grouped-query attention (fewer key / value heads than query heads)", where)
    if "unembed.W_U" not in tl:
        raise _refuse("no unembed.W_U (tied embeddings)", where)
    n_heads, d_model, d_head = W_Q.shape
    positional, n_ctx = _positions(tl, d_head, where)
    attn_only = not any(k.endswith("mlp.W_in") for k in tl)
    d_mlp = 0 if attn_only else int(tl[next(k for k in sorted(tl) if k.endswith("mlp.W_in"))].shape[1])
    try:
        return Architecture(
            n_layers=1 + max(int(x) for x in layers), n_heads=n_heads, d_model=d_model, d_head=d_head, d_mlp=d_mlp,
            n_ctx=n_ctx, d_vocab=W_E.shape[0], act_fn=act_fn, normalization=_normalization(tl, normalization, where),
            positional_embedding=positional, attn_only=attn_only,
        )  # fmt: skip
    except ValidationError as err:
        raise _refuse(problems_text(err), where) from None


def from_tl(tl: dict[str, torch.Tensor], arch: Architecture, where: str) -> dict[str, torch.Tensor]:
    """HookedTransformer-style state dict -> bridge state dict (keys and shapes checked)."""
    tl = {k: v for k, v in tl.items() if not k.endswith(_BUFFERS)}
    expected = {k: tuple(v.shape) for k, v in to_tl({k: torch.empty(s) for k, s in expected_shapes(arch).items()}, arch).items()}
    expected = {k: v for k, v in expected.items() if not k.endswith(_BUFFERS)}
    missing = sorted(set(expected) - set(tl))
    extra = sorted(set(tl) - set(expected))
    wrong = [f"{k} {tuple(tl[k].shape)} (expected {expected[k]})" for k in sorted(set(tl) & set(expected)) if tuple(tl[k].shape) != expected[k]]
    if missing or extra or wrong:
        detail = "; ".join(
            p for p in (
                "missing " + ", ".join(missing[:5]) if missing else "",
                "unsupported " + ", ".join(extra[:5]) if extra else "",
                "wrong shape " + ", ".join(wrong[:5]) if wrong else "",
            ) if p
        )  # fmt: skip
        raise _refuse(detail, where, hint=f"the weights were read as {describe(arch)}; untied, unfolded weights only")
    out = dict(_convert(k, tl[k], arch, to_tl=False) for k in expected)
    out = {k: v.detach().float().contiguous().clone() for k, v in out.items()}
    check_finite(out, where, hint="the checkpoint itself is broken; export it again from a model that computes")
    return out


def describe(arch: Architecture) -> str:
    """``LN, standard positions, relu MLPs``: the architecture's family in words."""
    mlp = "attention only" if arch.attn_only else f"{arch.act_fn} MLPs"
    return f"{arch.normalization or 'no'} normalization, {arch.positional_embedding} positions, {mlp}"
