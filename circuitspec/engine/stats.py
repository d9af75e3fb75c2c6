"""Mean statistics for mean ablation: per layer, per position, per head / neuron.

Computed on the engine's reference questions, a seeded set kept disjoint from the
questions the engine evaluates (``Engine.questions`` never returns a reference question;
``Engine.run`` reports any overlap).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuitspec.engine.forward import Weights, clean_pass


@dataclass
class MeanStats:
    z: torch.Tensor  # [L, n_ctx, H, dh]   mean of blocks.L.attn.hook_z
    post: torch.Tensor  # [L, n_ctx, d_mlp] mean of blocks.L.mlp.hook_post
    resid: torch.Tensor  # [L, n_ctx, d]    mean of blocks.L.hook_resid_post
    n: int

    @classmethod
    @torch.no_grad()
    def compute(cls, weights: Weights, tokens: torch.Tensor, chunk: int = 1024) -> "MeanStats":
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, tokens.shape[0], chunk):
            _, cache = clean_pass(weights, tokens[start : start + chunk], [], capture=("z", "post", "resid_pre"))
            parts = {
                "z": torch.stack(cache["z"]),
                "post": torch.stack(cache["post"]),
                "resid": torch.stack(cache["resid_pre"][1:]),
            }
            for name, t in parts.items():
                total = t.double().sum(dim=1)
                sums[name] = total if name not in sums else sums[name] + total
        n = tokens.shape[0]
        dtype = weights.embed.dtype
        return cls(**{k: (v / n).to(dtype) for k, v in sums.items()}, n=n)

    def for_kind(self, kind: str) -> torch.Tensor:
        return {"head": self.z, "mlp": self.post, "neurons": self.post, "resid": self.resid}[kind]
