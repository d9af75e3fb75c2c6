"""How well a site's output encodes a variable: linear probes and the 3-cluster check.

- ``probe``: a linear probe for one or more variables at once: a closed-form ridge
  regression onto their one-hot codes, refined by a few L-BFGS steps of multinomial
  logistic regression (least squares alone cannot read a middle value off an ordinal
  direction, which is how TriCase values are often laid out), scored by held-out
  accuracy against the majority-class baseline ("chance").
- ``tricase_clusters``: the paper's check for TriCase variables (ST, MT, NT): project the
  output on its top principal components, cluster it into 3 groups (k-means) and measure
  how purely the clusters separate the three cases.

Pure tensor functions; every random draw takes a seeded ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ProbeScore:
    accuracy: float  # held-out accuracy of the linear probe
    chance: float  # held-out accuracy of always answering the most common training value
    n_test: int


def split(n: int, generator: torch.Generator, train_frac: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    k = max(1, min(n - 1, int(round(n * train_frac))))
    return perm[:k], perm[k:]


def probe(
    features: torch.Tensor,
    labels: Mapping[str, torch.Tensor],
    generator: torch.Generator,
    *,
    train_frac: float = 0.5,
    ridge: float = 1e-2,
    steps: int = 25,
) -> dict[str, ProbeScore]:
    """Held-out accuracy of linear probes from ``features`` [N, F] to each ``labels[name]`` [N]."""
    x = features.detach().double().reshape(features.shape[0], -1)
    n = x.shape[0]
    train, test = split(n, generator, train_frac)
    mu = x[train].mean(0)
    sd = x[train].std(0).clamp_min(1e-6)
    x = (x - mu) / sd
    x = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], dim=1)
    blocks: list[tuple[str, torch.Tensor, int, int]] = []  # name, values, offset, width
    cols = []
    offset = 0
    for name, y in labels.items():
        y = y.detach().long().cpu()
        values, code = torch.unique(y, return_inverse=True)
        width = len(values)
        cols.append(torch.nn.functional.one_hot(code, width).double())
        blocks.append((name, code, offset, width))
        offset += width
    if not cols:
        return {}
    target = torch.cat(cols, dim=1)
    xt, yt = x[train], target[train]
    lam = ridge * max(1, xt.shape[0])
    if xt.shape[1] <= xt.shape[0]:
        gram = xt.T @ xt + lam * torch.eye(xt.shape[1], dtype=x.dtype)
        w = torch.linalg.solve(gram, xt.T @ yt)
    else:  # more features than samples: the dual (kernel) form
        gram = xt @ xt.T + lam * torch.eye(xt.shape[0], dtype=x.dtype)
        w = xt.T @ torch.linalg.solve(gram, yt)
    if steps:
        w = _logistic(xt, [(code[train], off, width) for _, code, off, width in blocks], w, ridge, steps)
    scores = x[test] @ w
    out: dict[str, ProbeScore] = {}
    for name, code, off, width in blocks:
        guess = scores[:, off : off + width].argmax(1)
        truth = code[test]
        majority = torch.bincount(code[train], minlength=width).argmax()
        out[name] = ProbeScore(
            accuracy=float((guess == truth).double().mean()),
            chance=float((truth == majority).double().mean()),
            n_test=int(len(test)),
        )
    return out


def _logistic(x: torch.Tensor, blocks: list[tuple[torch.Tensor, int, int]], w0: torch.Tensor, ridge: float, steps: int) -> torch.Tensor:
    """Multinomial logistic regression per block (softmax over the block's columns), L2-penalised,
    all blocks at once (padded to the widest)."""
    n, total = x.shape[0], w0.shape[1]
    widest = max(width for _, _, width in blocks)
    index = torch.full((len(blocks), widest), total, dtype=torch.long)  # column ``total`` = padding
    for b, (_, off, width) in enumerate(blocks):
        index[b, :width] = torch.arange(off, off + width)
    codes = torch.stack([code for code, _, _ in blocks], dim=1)  # [n, blocks]
    pad = torch.full((n, 1), float("-inf"), dtype=x.dtype)
    w = (w0 * 4.0).contiguous().clone().requires_grad_(True)  # least-squares scores are ~probabilities; sharpen
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        s = torch.cat([x @ w, pad], dim=1)[:, index]  # [n, blocks, widest]
        logp = torch.log_softmax(s, dim=-1)
        loss = -logp.gather(-1, codes.unsqueeze(-1)).sum() / n + ridge * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, *, restarts: int = 4, iters: int = 50) -> torch.Tensor:
    """Cluster ids [N] of the lowest-inertia run of k-means++ over ``restarts`` seeded starts."""
    best, best_inertia = None, float("inf")
    n = x.shape[0]
    for _ in range(restarts):
        centers = x[torch.randint(0, n, (1,), generator=generator)]
        for _ in range(1, k):
            d2 = torch.cdist(x, centers).min(1).values ** 2
            p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
            centers = torch.cat([centers, x[torch.multinomial(p, 1, generator=generator)]])
        for _ in range(iters):
            assign = torch.cdist(x, centers).argmin(1)
            new = torch.stack([x[assign == c].mean(0) if (assign == c).any() else centers[c] for c in range(k)])
            if torch.allclose(new, centers):
                break
            centers = new
        assign = torch.cdist(x, centers).argmin(1)
        inertia = float(((x - centers[assign]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    return best


@dataclass(frozen=True)
class ClusterScore:
    purity: float  # share of points whose cluster's majority case is their own case
    distinct: bool  # the 3 clusters' majority cases are the 3 different cases


def tricase_clusters(features: torch.Tensor, cases: torch.Tensor, generator: torch.Generator, *, components: int = 3) -> ClusterScore:
    """The paper's 3-cluster check: do the top principal components of the output fall into
    three clusters, one per case of the TriCase variable (``cases`` in {0, 1, 2})?"""
    x = features.detach().double().reshape(features.shape[0], -1)
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    proj = x @ v[: min(components, v.shape[0])].T
    assign = kmeans(proj, 3, generator)
    cases = cases.long().cpu()
    hits = 0
    majorities = []
    for c in range(3):
        members = cases[assign == c]
        if len(members) == 0:
            continue
        counts = torch.bincount(members, minlength=3)
        majorities.append(int(counts.argmax()))
        hits += int(counts.max())
    return ClusterScore(purity=hits / len(cases), distinct=sorted(majorities) == [0, 1, 2])
