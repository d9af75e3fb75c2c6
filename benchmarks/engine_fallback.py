"""Benchmark: the engine's hooked fallback (``engine.hooked``) against its fast path, same process.

One zoo model (default ``add_d5_l1_h3_t15K_s372001``, the quickest), both engine paths on the
same questions: a mean-ablation scan (every head and MLP site), an interchange scan over the
same sites, and path patching (each head's output into the MLP at its position). Prints each
path's time, the ratio hooked / fast, and whether they agree (identical predictions,
log-probs within 1e-4).

Usage: python benchmarks/engine_fallback.py [--model NAME] [--questions 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="add_d5_l1_h3_t15K_s372001")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from circuitspec.engine import Engine, Intervention, Site
    from circuitspec.engine.paths import PathPatch, path_patch
    from circuitspec.models import load

    model = load(args.model)
    fast = Engine(model, seed=0)
    slow = Engine(model, seed=0, path="hooked")
    qs, src = fast.questions(args.questions, seed=1), fast.questions(args.questions, seed=2)
    _ = fast.stats, slow.stats  # mean statistics outside the timings
    sites = fast.sites()
    print(f"{args.model}: {len(sites)} sites, {args.questions} questions, {args.threads} thread(s)")
    jobs = {
        "mean scan": lambda e: e.run(qs, [Intervention("mean", [s]) for s in sites]),
        "interchange scan": lambda e: e.run(qs, [Intervention("interchange", [s], source=src) for s in sites]),
    }
    heads = [s for s in sites if s.kind == "head"]
    patches = [
        PathPatch(sender=(h,), receiver=(Site.for_mlp(h.layer, h.position),), frozen=(), base=qs, source=src)
        for h in heads
        if fast.shape.d_mlp
    ]
    print(f"{'job':<18} {'fast s':>8} {'hooked s':>9} {'ratio':>7}  agree")
    for name, job in jobs.items():
        a, t_fast = timed(lambda: job(fast))
        b, t_slow = timed(lambda: job(slow))
        agree = torch.equal(a.pred, b.pred) and torch.allclose(a.logprob, b.logprob, atol=1e-4)
        print(f"{name:<18} {t_fast:8.2f} {t_slow:9.2f} {t_slow / t_fast:7.1f}  {agree}")
    if patches:
        a, t_fast = timed(lambda: path_patch(fast, patches))
        b, t_slow = timed(lambda: path_patch(slow, patches))
        agree = all(torch.equal(x, y) for x, y in zip(a.pred, b.pred))
        agree = agree and all(torch.allclose(x, y, atol=1e-4) for x, y in zip(a.logprobs, b.logprobs))
        print(f"{'path patching':<18} {t_fast:8.2f} {t_slow:9.2f} {t_slow / t_fast:7.1f}  {agree}  ({len(patches)} edges)")


if __name__ == "__main__":
    main()
