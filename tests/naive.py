"""The tests' oracle: one intervention per hooked forward pass of the bridge itself (not shipped).

This is how the reference library works (one site per pass, one hook per site, the
bridge's own ``run_with_hooks``). The engine's tests prove ``Engine.run`` gives the
same outcomes; ``benchmarks/engine_scan.py`` times both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.engine.interventions import Intervention
from circuitspec.engine.runner import Engine, Outcomes
from circuitspec.engine.sites import Site


def _replace(site: Site, value: torch.Tensor):
    """A hook that writes ``value`` (already aligned with the batch) into ``site``."""

    def hook(act: torch.Tensor, hook=None) -> torch.Tensor:
        act = act.clone()
        if site.kind == "head":
            act[:, site.position, site.head] = value
        elif site.kind == "mlp":
            act[:, site.position] = value
        elif site.kind == "neurons":
            act[:, site.position, list(site.neurons)] = value
        else:
            act[:, site.position] = value
        return act

    return hook


def _take(site: Site, act: torch.Tensor) -> torch.Tensor:
    """The slice of an activation ([B, pos, ...] or a mean [pos, ...]) that ``site`` covers."""
    if site.kind == "head":
        return act[..., site.position, site.head, :]
    if site.kind == "neurons":
        return act[..., site.position, list(site.neurons)]
    return act[..., site.position, :]


@torch.no_grad()
def run_naive(engine: Engine, tokens: torch.Tensor, interventions: Sequence[Intervention]) -> Outcomes:
    """``Engine.run`` done the slow way: for every intervention, one ``run_with_hooks`` pass
    over all questions with one hook per site; sources are read from ``run_with_cache``."""
    bridge = engine.bridge
    tokens = engine._check_tokens(tokens)
    gold = engine.task.answers(tokens).long().to(engine.device)
    pred_pos = engine.pred_positions
    stats = engine.stats
    means = {"head": stats.z, "mlp": stats.post, "neurons": stats.post, "resid": stats.resid}
    clean_logits = bridge(tokens)
    clean_lp = clean_logits[:, pred_pos].log_softmax(-1)
    preds, lps = [], []
    for iv in interventions:
        iv.checked(engine.shape)
        src = engine.sources(iv, tokens.shape[0])
        src_cache = None
        if src is not None:
            _, src_cache = bridge.run_with_cache(src, names_filter=lambda name: name.endswith(("hook_z", "hook_post", "hook_resid_post")))
        hooks = []
        for site in iv.sites:
            if iv.kind == "zero":
                value = torch.zeros_like(_take(site, means[site.kind][site.layer]))
            elif iv.kind == "mean":
                value = _take(site, means[site.kind][site.layer])
            else:
                value = _take(site, src_cache[site.hook])
            hooks.append((site.hook, _replace(site, value)))
        logits = bridge.run_with_hooks(tokens, fwd_hooks=hooks) if hooks else clean_logits
        lp = logits[:, pred_pos].log_softmax(-1)
        preds.append(lp.argmax(-1))
        lps.append(lp.gather(-1, gold.unsqueeze(-1)).squeeze(-1))
    pred = torch.stack(preds) if preds else torch.empty(0, *gold.shape, dtype=torch.long)
    logprob = torch.stack(lps) if lps else torch.empty(0, *gold.shape)
    return Outcomes(
        interventions=list(interventions),
        tokens=tokens,
        gold=gold,
        pred=pred,
        correct=pred == gold.unsqueeze(0),
        logprob=logprob,
        clean=engine._clean_outcomes(clean_lp, gold),
        answer_labels=engine.answer_labels,
    )


@torch.no_grad()
def path_patch_naive(engine: Engine, patches) -> list[torch.Tensor]:
    """``engine.paths.path_patch`` done the slow way, one edge at a time with the bridge's own hooks:
    a hooked pass patching the sender from the source and freezing the other nodes' sites at the
    base run's values while recording the receiver, then a hooked pass setting only the receiver
    (``route="answer"``: the first pass's answers). Returns the predicted answer tokens [B, A] of each patch."""
    bridge = engine.bridge
    pred_pos = engine.pred_positions
    names = lambda name: name.endswith(("hook_z", "hook_post"))  # noqa: E731
    out = []
    for p in patches:
        base, source = p.base.to(engine.device), p.source.to(engine.device)
        _, base_cache = bridge.run_with_cache(base, names_filter=names)
        _, src_cache = bridge.run_with_cache(source, names_filter=names)
        recorded: dict[Site, torch.Tensor] = {}

        def record(site: Site):
            def hook(act: torch.Tensor, hook=None) -> None:
                recorded[site] = _take(site, act).clone()

            return hook

        hooks = [(s.hook, _replace(s, _take(s, src_cache[s.hook]))) for s in p.sender]
        hooks += [(s.hook, _replace(s, _take(s, base_cache[s.hook]))) for s in p.frozen]
        hooks += [(s.hook, record(s)) for s in p.receiver]
        logits = bridge.run_with_hooks(base, fwd_hooks=hooks)
        if p.route == "target":  # "answer": the first pass's logits, through the receiver or around it
            logits = bridge.run_with_hooks(base, fwd_hooks=[(s.hook, _replace(s, recorded[s])) for s in p.receiver])
        out.append(logits[:, pred_pos].argmax(-1))
    return out
