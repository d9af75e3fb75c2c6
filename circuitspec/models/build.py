"""Build an untrained model (a TransformerLens 4 ``TransformerBridge``) from an ``Architecture``."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch

from circuitspec.models.card import Architecture

log = logging.getLogger(__name__)


def bridge_config(arch: Architecture, seed: int = 0, device: str = "cpu"):
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=arch.d_model,
        d_head=arch.d_head,
        n_layers=arch.n_layers,
        n_ctx=arch.n_ctx,
        n_heads=arch.n_heads,
        d_vocab=arch.d_vocab,
        d_mlp=arch.d_mlp,
        act_fn=arch.act_fn,
        architecture="TransformerLensNative",
        seed=seed,
        normalization_type=arch.normalization,
        positional_embedding_type=arch.positional_embedding,
        attn_only=arch.attn_only,
        device=device,
    )


def build_bridge(arch: Architecture, seed: int = 0, device: str = "cpu"):
    """A freshly initialised bridge; its initial weights depend only on ``seed``."""
    from transformer_lens.model_bridge import TransformerBridge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_native(bridge_config(arch, seed=seed, device=device))
    return move(bridge, device)


def move(bridge, device: str):
    """``bridge.to(device)`` without TransformerLens's 'Moving model to device' print."""
    with contextlib.redirect_stdout(io.StringIO()):
        return bridge.to(device)


def expected_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """The bridge's state-dict keys and shapes for ``arch`` (checked on every load)."""
    d, h, dh, m, v = arch.d_model, arch.n_heads, arch.d_head, arch.d_mlp, arch.d_vocab
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (v, d)}
    if arch.positional_embedding == "standard":
        shapes["pos_embed.weight"] = (arch.n_ctx, d)
    norm = {"LN": ("weight", "bias"), "RMS": ("weight",)}.get(arch.normalization, ())  # LNPre and None learn nothing

    def ln(name: str) -> None:
        for part in norm:
            shapes[f"{name}.{part}"] = (d,)

    for layer in range(arch.n_layers):
        b = f"blocks.{layer}"
        ln(f"{b}.ln1")
        for p in ("q", "k", "v"):
            shapes[f"{b}.attn.{p}.weight"] = (h * dh, d)
            shapes[f"{b}.attn.{p}.bias"] = (h * dh,)
        shapes[f"{b}.attn.o.weight"] = (d, h * dh)
        shapes[f"{b}.attn.o.bias"] = (d,)
        if arch.attn_only:
            continue
        ln(f"{b}.ln2")
        shapes[f"{b}.mlp.in.weight"] = (m, d)
        shapes[f"{b}.mlp.in.bias"] = (m,)
        shapes[f"{b}.mlp.out.weight"] = (d, m)
        shapes[f"{b}.mlp.out.bias"] = (d,)
    ln("ln_final")
    shapes["unembed.weight"] = (v, d)
    shapes["unembed.bias"] = (v,)
    return shapes


def state_dict(bridge) -> dict[str, torch.Tensor]:
    """The bridge's weights under their stable names, detached, contiguous, on the CPU."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in bridge.state_dict().items()}
