"""Trainer speed: circuitspec's trainer vs a plain PyTorch loop over the same model, in the same run.

    python benchmarks/train_speed.py [--name add_d6_l2_h3_s1] [--steps 300] [--threads 1]

Both loops train the same architecture from the same initial weights on batches from
the same task; the plain loop has no checkpointing, no callback, no schedule. The ratio
(trainer steps/s over plain steps/s) should be close to 1.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def plain_loop(card, steps: int) -> float:
    """Steps per second of a minimal AdamW loop on the same model and data."""
    from circuitspec.models.build import build_bridge
    from circuitspec.models.zoo import make_task

    bridge = build_bridge(card.architecture, seed=card.recipe.seed)
    module = bridge.original_model
    task = make_task(card.task.op, card.task.digits)
    opt = torch.optim.AdamW(bridge.parameters(), lr=card.recipe.lr, betas=(0.9, 0.98), weight_decay=0.1)
    g = torch.Generator().manual_seed(card.recipe.seed)
    n_ctx, n_answer = task.n_ctx, task.n_answer
    start = time.perf_counter()
    for _ in range(steps):
        tokens = task.generate(card.recipe.batch, g, enrich=True)
        logits = module(tokens)[:, n_ctx - n_answer - 1 : n_ctx - 1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, -n_answer:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def trainer(card) -> float:
    from circuitspec.models.training import train

    start = time.perf_counter()
    train(card)
    return card.recipe.steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="add_d6_l2_h3_s1")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    from circuitspec.models.training import plan

    torch.set_num_threads(args.threads)
    card = plan(args.name, steps=args.steps, width=args.width, threads=args.threads)
    plain, ours = [], []
    for _ in range(args.repeats):  # interleaved, so load changes hit both
        plain.append(plain_loop(card, args.steps))
        ours.append(trainer(card))
    p, o = max(plain), max(ours)
    print(f"model {card.name} (d_model {args.width}), {args.steps} steps, {args.threads} thread(s), best of {args.repeats}")
    print(f"plain PyTorch loop: {p:7.1f} steps/s")
    print(f"circuitspec trainer: {o:7.1f} steps/s")
    print(f"ratio trainer/plain: {o / p:.3f}")


if __name__ == "__main__":
    main()
