"""The engine's exact fallback: the same passes through TransformerLens's own hooks on the bridge.

``forward.py`` is fast because it re-implements one architecture family (pre-LayerNorm,
learned absolute positions, an MLP in every block). Any other model TransformerLens 4 runs
(no normalization, LNPre, RMSNorm, rotary positions, attention-only, ...) goes through here:
the bridge computes every layer itself and the engine only reads and writes the hook points
its sites live on (``blocks.L.attn.hook_z``, ``blocks.L.mlp.hook_post``,
``blocks.L.hook_resid_post``; ``Site.hook``). Interventions are still batched (one batch row
per intervention and question) and use the same per-row masks as the fast path, so the two
give the same outcomes where both run (``tests/test_hooked.py``); what the fallback gives up
is the reuse of the clean run's earlier layers and positions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from circuitspec.errors import EngineError

# clean-pass activation name -> hook name in one layer (``resid_pre`` has one more entry: the final stream)
_HOOKS = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "z": "blocks.{layer}.attn.hook_z",
    "pattern": "blocks.{layer}.attn.hook_pattern",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "post": "blocks.{layer}.mlp.hook_post",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
}
_MLP_ONLY = ("resid_mid", "post", "mlp_out")  # absent from attention-only blocks
# what an edit function may change, and where it lives
_EDIT_HOOKS = {"z": "blocks.{layer}.attn.hook_z", "post": "blocks.{layer}.mlp.hook_post", "resid": "blocks.{layer}.hook_resid_post"}

Edit = Callable[[int, str, torch.Tensor], torch.Tensor]


def has_mlp(bridge) -> bool:
    return not getattr(bridge.cfg, "attn_only", False)


def _logprobs(logits: torch.Tensor, pred_positions: list[int] | None) -> torch.Tensor:
    return (logits if pred_positions is None else logits[:, pred_positions]).log_softmax(-1)


def clean_pass(
    bridge, tokens: torch.Tensor, pred_positions: list[int] | None, capture: tuple[str, ...] = (), track: bool = False
) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """``forward.clean_pass`` through the bridge's hooks: log-probs [B, P, V] at
    ``pred_positions`` (all if None) and the captured activations, one tensor per layer
    (``resid_pre`` one more: the final residual stream). In an attention-only model the
    MLP activations are empty lists. ``track``: leave the activations in the autograd graph."""
    unknown = set(capture) - set(_HOOKS)
    if unknown:
        raise EngineError(f"the hooked pass cannot capture {sorted(unknown)}", hint="q, k and v are the fast path's alone")
    n_layers = bridge.cfg.n_layers
    cache: dict[str, list[torch.Tensor]] = {name: [None] * n_layers for name in capture}  # type: ignore[list-item]
    hooks = []

    def store(name: str, index: int):
        def hook(act: torch.Tensor, hook=None) -> torch.Tensor:
            cache[name][index] = act if track else act.detach()
            return act

        return hook

    for name in capture:
        if name in _MLP_ONLY and not has_mlp(bridge):
            cache[name] = []
            continue
        for layer in range(n_layers):
            hooks.append((_HOOKS[name].format(layer=layer), store(name, layer)))
    if "resid_pre" in cache:
        cache["resid_pre"].append(None)  # type: ignore[arg-type]
        hooks.append((f"blocks.{n_layers - 1}.hook_resid_post", store("resid_pre", n_layers)))
    with torch.set_grad_enabled(track and torch.is_grad_enabled()):
        logits = bridge.run_with_hooks(tokens, fwd_hooks=hooks) if hooks else bridge(tokens)
    return _logprobs(logits, pred_positions), cache


def run_with_edits(bridge, tokens: torch.Tensor, edit: Edit, layers: dict[str, set[int]], pred_positions: list[int]) -> torch.Tensor:
    """Log-probs [B, P, V] at ``pred_positions`` of the bridge over ``tokens`` with
    ``edit(layer, what, act)`` replacing the activation ``what`` ('z', 'post' or 'resid',
    the residual stream after the layer) at the given layers."""
    hooks = []
    for what, chosen in layers.items():
        for layer in sorted(chosen):

            def hook(act: torch.Tensor, hook=None, layer=layer, what=what) -> torch.Tensor:
                return edit(layer, what, act)

            hooks.append((_EDIT_HOOKS[what].format(layer=layer), hook))
    logits = bridge.run_with_hooks(tokens, fwd_hooks=hooks) if hooks else bridge(tokens)
    return _logprobs(logits, pred_positions)
