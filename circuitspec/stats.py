"""Confidence intervals used for every reported figure.

Verdicts never rest on a point estimate alone: proportions carry a Wilson or
Clopper-Pearson interval, aggregate metrics a seeded percentile bootstrap.
"""

from __future__ import annotations

import math

import torch

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Point estimate and Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: torch.Tensor, *, seed: int, resamples: int = 1000, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-question ``values`` with a percentile bootstrap interval (seeded)."""
    values = values.float().flatten()
    n = values.numel()
    if n == 0:
        return 0.0, 0.0, 1.0
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (resamples, n), generator=g)
    means = values[idx].mean(dim=1)
    alpha = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([alpha, 1 - alpha])).tolist()
    return values.mean().item(), low, high
