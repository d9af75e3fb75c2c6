"""Mean statistics for mean ablation: per layer, per position, per head / neuron.

Computed on the engine's reference questions, a seeded set kept disjoint from the
questions the engine evaluates (``Engine.questions`` never returns a reference question;
``Engine.run`` reports any overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class MeanStats:
    z: torch.Tensor  # [L, n_ctx, H, dh]   mean of blocks.L.attn.hook_z
    post: torch.Tensor  # [L, n_ctx, d_mlp] mean of blocks.L.mlp.hook_post
    resid: torch.Tensor  # [L, n_ctx, d]    mean of blocks.L.hook_resid_post
    n: int

    @classmethod
    @torch.no_grad()
    def compute(cls, clean_pass: Callable, tokens: torch.Tensor, dtype: torch.dtype, chunk: int = 1024) -> "MeanStats":
        """From ``clean_pass(tokens, pred_positions, capture=...)`` (``Engine.clean_pass``). An
        attention-only model has no MLP activations: its ``post`` has no neurons."""
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, tokens.shape[0], chunk):
            rows = tokens[start : start + chunk]
            _, cache = clean_pass(rows, [], capture=("z", "post", "resid_pre"))
            n_layers, n_ctx = len(cache["z"]), rows.shape[1]
            parts = {
                "z": torch.stack(cache["z"]),
                "post": torch.stack(cache["post"]) if cache["post"] else rows.new_zeros((n_layers, rows.shape[0], n_ctx, 0), dtype=dtype),
                "resid": torch.stack(cache["resid_pre"][1:]),
            }
            for name, t in parts.items():
                total = t.double().sum(dim=1)
                sums[name] = total if name not in sums else sums[name] + total
        n = tokens.shape[0]
        return cls(**{k: (v / n).to(dtype) for k, v in sums.items()}, n=n)

    def for_kind(self, kind: str) -> torch.Tensor:
        return {"head": self.z, "mlp": self.post, "neurons": self.post, "resid": self.resid}[kind]
