"""Benchmark: a full single-site scan, batched engine against the one-site-at-a-time loop.

A scan mean-ablates every head and every MLP layer at every position, one site per
intervention, over ~500 questions (as in the paper). Measured in one run:

1. a 6-digit zoo model (``add_d6_l2_h3_s372001``): the batched ``Engine.run`` and the plain
   loop (``tests/naive.py``'s ``run_naive``: one ``bridge.run_with_hooks`` pass per site,
   one hook per site) over every site; their times, the speed-up and whether the results are
   identical (same predictions, log-probs within 1e-4);
2. the paper's width (d_model 510, d_head 170, d_mlp 2040, 3 layers, 4 heads; random
   weights): the engine over every site; the plain loop over an evenly spaced subset of
   sites, extrapolated to all (said so in the output), results compared on that subset;
3. for both, the time of plain forward passes over the same number of rows (sites x
   questions, in chunks of one question set): the bridge's own forward and the engine's
   functional clean pass (at the paper's width timed on as many chunks as the loop's
   subset and scaled, said so in the output);
4. the multiply-adds each side performs (torch's FlopCounterMode, untimed runs; the
   loop's from one site's pass times the number of sites). Their ratio is the speed-up
   the engine reaches if both compute at the same rate: the engine recomputes only what
   an intervention can change, so this is the arithmetic it cannot skip and stay exact.

Usage: python benchmarks/engine_scan.py [--questions 500] [--threads 1] [--subset 24] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # naive.py: the one-site-per-pass oracle


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def zoo_or_none(name: str):
    try:
        from circuitspec.models import load

        return load(name)
    except Exception as err:  # noqa: BLE001 - report and fall back
        print(f"(could not load zoo model {name}: {err})")
        return None


def paper_width_bridge(digits: int, device: str):
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        d_model=510, d_head=170, n_layers=3, n_ctx=3 * digits + 4, n_heads=4, d_vocab=15, d_mlp=2040,
        act_fn="relu", architecture="TransformerLensNative", seed=1, normalization_type="LN",
        positional_embedding_type="standard", device=device,
    )
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # TL prints on .to()
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_native(cfg).to(device)


@torch.no_grad()
def plain_forward_seconds(engine, questions, n_sites: int, sample: int) -> tuple[float, float, int]:
    """Seconds for plain forward passes over n_sites x len(questions) rows, in chunks of
    len(questions) rows: the bridge's forward and the engine's functional clean pass. Timed on
    ``sample`` chunks and scaled to ``n_sites`` chunks when sample < n_sites."""
    from circuitspec.engine.forward import clean_pass

    k = min(sample, n_sites)
    _, t_bridge = timed(lambda: [engine.bridge(questions) for _ in range(k)])
    _, t_func = timed(lambda: [clean_pass(engine.weights, questions, engine.pred_positions, capture=()) for _ in range(k)])
    return t_bridge * n_sites / k, t_func * n_sites / k, k


@torch.no_grad()
def multiply_adds(engine, questions, ivs) -> tuple[float, float]:
    """(engine, loop) multiply-adds for the scan, counted by torch (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    from naive import run_naive  # the tests' oracle (tests/naive.py)

    with FlopCounterMode(display=False) as engine_count:
        engine.run(questions, ivs)
    loop = []
    for n in (1, 2):  # the loop's fixed part (its clean pass) and one site's pass
        with FlopCounterMode(display=False) as count:
            run_naive(engine, questions, ivs[:n])
        loop.append(count.get_total_flops() / 2)
    per_site = loop[1] - loop[0]
    return engine_count.get_total_flops() / 2, loop[0] - per_site + per_site * len(ivs)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def scan(title: str, engine, questions, subset: int | None, device: str) -> dict:
    from circuitspec.engine import Intervention
    from naive import run_naive  # the tests' oracle (tests/naive.py)

    sites = engine.sites()
    ivs = [Intervention("mean", [s]) for s in sites]
    _ = engine.stats  # reference statistics: shared by both, computed once per model (not timed)
    engine.run(questions[:4], ivs[:2])  # warm-up
    sync(device)
    fast, t_fast = timed(engine.run, questions, ivs)
    sync(device)
    if subset and subset < len(ivs):
        step = len(ivs) / subset
        pick = sorted({int(i * step) for i in range(subset)})
    else:
        pick = list(range(len(ivs)))
    slow, t_slow_part = timed(run_naive, engine, questions, [ivs[i] for i in pick])
    sync(device)
    t_slow = t_slow_part * len(ivs) / len(pick)
    same_pred = torch.equal(fast.pred[pick], slow.pred)
    max_lp = float((fast.logprob[pick] - slow.logprob).abs().max())
    t_bridge, t_func, k = plain_forward_seconds(engine, questions, len(ivs), sample=len(pick))
    s = engine.shape
    print(f"\n== {title}")
    print(f"   shape: {s.n_layers} layers, {s.n_heads} heads, d_model {s.d_model}, d_mlp {s.d_mlp}, n_ctx {s.n_ctx}")
    print(f"   scan: {len(ivs)} single-site mean ablations x {questions.shape[0]} questions = {len(ivs) * questions.shape[0]:,} rows")
    print(f"   batched engine:          {t_fast:8.2f} s   ({int(fast.stats['passes'])} patched passes, {int(fast.stats['groups'])} plans)")
    if len(pick) < len(ivs):
        print(f"   one-site-at-a-time loop: {t_slow:8.2f} s   (EXTRAPOLATED: timed {t_slow_part:.2f} s on {len(pick)} of {len(ivs)} sites)")
    else:
        print(f"   one-site-at-a-time loop: {t_slow:8.2f} s")
    print(f"   speed-up:                {t_slow / t_fast:8.1f}x")
    print(f"   identical results:       predictions {'identical' if same_pred else 'DIFFER'} on {len(pick)} sites; max |log-prob diff| {max_lp:.2e}")
    scaled = f" (timed on {k} of {len(ivs)} chunks of {questions.shape[0]} rows, scaled)" if k < len(ivs) else ""
    print(f"   plain forward over the same rows: bridge {t_bridge:.2f} s, functional {t_func:.2f} s{scaled}")
    print(f"   engine time / plain functional forward time: {t_fast / t_func:.2f}")
    m_engine, m_loop = multiply_adds(engine, questions, ivs)
    print(f"   multiply-adds: engine {m_engine / 1e9:.1f} G, loop {m_loop / 1e9:.1f} G: {m_loop / m_engine:.1f}x less arithmetic (the speed-up at equal compute rate)")
    failures = 1.0 - fast.question_correct.float().mean(-1)
    print(f"   sites breaking >=1 question: {int((failures > 0).sum())} of {len(ivs)}")
    return {"fast": t_fast, "slow": t_slow, "same": same_pred, "max_lp": max_lp}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--subset", type=int, default=24, help="sites the plain loop runs at the paper's width")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="add_d6_l2_h3_s372001")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from circuitspec.engine import Engine
    from circuitspec.tasks import ArithmeticTask

    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}")
    model = zoo_or_none(args.model)
    results = []
    if model is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            model.to(args.device)
        engine = Engine(model, seed=0)
        qs = engine.questions(args.questions, seed=1)
        results.append(scan(f"zoo model {model.name}", engine, qs, None, args.device))
    task = ArithmeticTask("add", 6)
    engine = Engine(paper_width_bridge(6, args.device), task, seed=0)
    qs = engine.questions(args.questions, seed=1)
    results.append(scan("paper width, random weights", engine, qs, args.subset, args.device))
    ok = all(r["same"] and r["max_lp"] < 1e-3 for r in results)
    print(f"\nall results identical: {ok}")


if __name__ == "__main__":
    main()
