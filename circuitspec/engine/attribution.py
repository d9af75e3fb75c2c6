"""Attribution patching: one forward and one backward pass estimate the effect of ablating
every MLP neuron (and every head, every MLP) at every position, so that exact ablations
are spent on the top candidates only.

The estimate for a unit u with activation a(u) and baseline b(u) (its mean, or zero) is
the first-order change of the answer log-prob when a(u) is replaced by b(u)::

    effect(u) ~= (b(u) - a(u)) . d logprob / d a(u)

averaged over the questions. The metric is summed over the answer tokens of each question:
by default the log-odds of the gold token (or of ``targets``), ``logit - logsumexp(other
logits)``, which does not saturate on a confident model the way the log-prob does (its
gradient vanishes as p -> 1); ``metric="logprob"`` uses the log-prob. A negative effect
means ablation hurts. ``confirm`` measures the
exact effect of a ranked list with real ablations through ``Engine.run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from circuitspec.engine.interventions import Intervention
from circuitspec.engine.runner import Engine
from circuitspec.engine.sites import Site
from circuitspec.errors import EngineError, unknown


METRICS = ("logodds", "logprob")
BASELINES = ("mean", "zero", "interchange")


@dataclass
class Attribution:
    """Estimated effect of ablating each unit on the summed answer log-prob (mean per question)."""

    neurons: torch.Tensor  # [L, n_ctx, d_mlp]
    heads: torch.Tensor  # [L, n_ctx, H]
    mlps: torch.Tensor  # [L, n_ctx]
    baseline: str
    metric: str

    def ranked(self, kind: str = "neurons", top: int | None = None, *, positions: Sequence[int] | None = None) -> list[tuple[Site, float]]:
        """Units by estimated harm (most negative effect first) as single-unit sites."""
        if kind not in ("neurons", "heads", "mlps"):
            raise unknown("attribution kind", kind, ("neurons", "heads", "mlps"), EngineError)
        scores = getattr(self, kind)
        if positions is not None:
            mask = torch.zeros(scores.shape[1], dtype=torch.bool)
            mask[list(positions)] = True
            scores = scores.masked_fill(~mask.view(1, -1, *([1] * (scores.dim() - 2))), float("inf"))
        flat = scores.reshape(-1)
        k = flat.numel() if top is None else min(top, flat.numel())
        values, idx = torch.topk(-flat, k)
        out = []
        for v, i in zip(values.tolist(), idx.tolist()):
            if v == float("-inf"):
                break
            coords = torch.unravel_index(torch.tensor(i), scores.shape)
            layer, pos = int(coords[0]), int(coords[1])
            if kind == "neurons":
                site = Site.for_neurons(layer, pos, [int(coords[2])])
            elif kind == "heads":
                site = Site.for_head(layer, pos, int(coords[2]))
            else:
                site = Site.for_mlp(layer, pos)
            out.append((site, -v))
        return out


def _metric(lp: torch.Tensor, tgt: torch.Tensor, metric: str) -> torch.Tensor:
    """Per-question metric [B] from log-probs [B, A, V] and targets [B, A]."""
    gold = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    if metric == "logprob":
        return gold.sum(-1)
    others = lp.scatter(-1, tgt.unsqueeze(-1), float("-inf")).logsumexp(-1)
    return (gold - others).sum(-1)


def attribute(
    engine: Engine,
    tokens: torch.Tensor,
    *,
    baseline: str = "mean",
    metric: str = "logodds",
    targets: torch.Tensor | None = None,
    source: torch.Tensor | None = None,
    chunk: int = 512,
) -> Attribution:
    """Attribution patching over ``tokens`` with one forward and backward pass (per chunk).

    ``baseline="interchange"`` takes each unit's baseline from ``source`` (counterfactual
    questions aligned row by row with ``tokens``): with ``targets`` set to the causal model's
    predicted answers, a positive effect then means patching that unit moves the answer
    towards the prediction.
    """
    if baseline not in BASELINES:
        raise unknown("attribution baseline", baseline, BASELINES, EngineError)
    if (baseline == "interchange") != (source is not None):
        raise EngineError("source tokens go with baseline='interchange' and only with it")
    if metric not in METRICS:
        raise unknown("attribution metric", metric, METRICS, EngineError)
    tokens = engine._check_tokens(tokens)
    if source is not None:
        source = engine._check_tokens(source, "attribution source")
        if source.shape != tokens.shape:
            raise EngineError(f"attribution source has shape {list(source.shape)}, tokens {list(tokens.shape)}")
    tgt = engine.task.answers(tokens).long() if targets is None else torch.as_tensor(targets).long()
    if tgt.shape != (tokens.shape[0], len(engine.answer_positions)):
        raise EngineError(f"targets must have shape [B, A] = {[tokens.shape[0], len(engine.answer_positions)]}, got {list(tgt.shape)}")
    tgt = tgt.to(engine.device)
    s = engine.shape
    stats = engine.stats
    neurons = torch.zeros(s.n_layers, s.n_ctx, s.d_mlp, dtype=torch.float64)
    heads = torch.zeros(s.n_layers, s.n_ctx, s.n_heads, dtype=torch.float64)
    for start in range(0, tokens.shape[0], chunk):
        toks = tokens[start : start + chunk]
        with torch.enable_grad():
            lp, cache = engine.clean_pass(toks, engine.pred_positions, capture=("z", "post"), track=True)
            total = _metric(lp, tgt[start : start + chunk], metric).sum()
            grads = torch.autograd.grad(total, cache["z"] + cache["post"])
        n_l = s.n_layers
        if source is not None:
            _, src_cache = engine.clean_pass(source[start : start + chunk], [], capture=("z", "post"))
        for layer in range(n_l):
            z, gz = cache["z"][layer].detach(), grads[layer]
            if source is not None:
                base_z = src_cache["z"][layer]
            else:
                base_z = stats.z[layer] if baseline == "mean" else torch.zeros_like(stats.z[layer])
            heads[layer] += ((base_z - z) * gz).sum(dim=(0, -1)).double().cpu()
            if not cache["post"]:  # attention-only: no neurons
                continue
            post, gp = cache["post"][layer].detach(), grads[n_l + layer]
            if source is not None:
                base_p = src_cache["post"][layer]
            else:
                base_p = stats.post[layer] if baseline == "mean" else torch.zeros_like(stats.post[layer])
            neurons[layer] += ((base_p - post) * gp).sum(dim=0).double().cpu()
    n = tokens.shape[0]
    neurons, heads = (neurons / n).float(), (heads / n).float()
    return Attribution(neurons=neurons, heads=heads, mlps=neurons.sum(-1), baseline=baseline, metric=metric)


@dataclass(frozen=True)
class Confirmation:
    site: Site
    estimate: float | None  # the attribution estimate, when given
    effect: float  # exact mean change of the metric (summed over answer tokens) under ablation
    failure_rate: float  # exact share of questions with a wrong answer token under ablation


def confirm(
    engine: Engine,
    tokens: torch.Tensor,
    candidates: Sequence[Site | tuple[Site, float]],
    *,
    kind: str = "mean",
    metric: str = "logodds",
) -> list[Confirmation]:
    """Exact single-site ablations of ``candidates`` (sites, or (site, estimate) pairs from
    ``Attribution.ranked``), in the given order."""
    if kind not in ("mean", "zero", "resample"):
        raise unknown("ablation kind", kind, ("mean", "zero", "resample"), EngineError)
    pairs = [(c, None) if isinstance(c, (Site, str)) else c for c in candidates]
    sites = [Site.parse(s) if isinstance(s, str) else s for s, _ in pairs]
    if metric not in METRICS:
        raise unknown("attribution metric", metric, METRICS, EngineError)
    out = engine.run(tokens, [Intervention(kind, [s]) for s in sites], keep_logprobs=True)
    gold = out.gold
    clean_m = _metric(out.clean.logprobs, gold, metric)  # [B]
    n_i = len(sites)
    m = _metric(out.logprobs.reshape(-1, *out.logprobs.shape[2:]), gold.repeat(n_i, 1), metric).view(n_i, -1)
    effects = (m - clean_m.unsqueeze(0)).mean(-1)
    fails = out.failure_rate
    return [
        Confirmation(site=s, estimate=None if e is None else float(e), effect=float(effects[i]), failure_rate=float(fails[i]))
        for i, (s, (_, e)) in enumerate(zip(sites, pairs))
    ]
