"""Evaluation speed: failures per million on N uniform questions (default 1,000,000).

    python benchmarks/eval_speed.py [--model add_d6_l2_h3_s372001] [--questions 1000000] [--chunk 0] [--compare 50000] [--threads 0]

First times ``--compare`` questions in the device's default blocks (``--chunk 0``) against
4096-row blocks in the same process (the ratio shows why the CPU default is small),
then the full ``--questions`` run.

Uses the shipped model when it exists, else a freshly built model of the same shape
(timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="add_d6_l2_h3_s372001")
    ap.add_argument("--questions", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=0, help="rows per forward pass (0: the device's default)")
    ap.add_argument("--compare", type=int, default=50_000, help="questions for the block-size comparison (0: skip)")
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from circuitspec.errors import ModelError
    from circuitspec.models import load, model_from_tensors, plan
    from circuitspec.models.build import build_bridge, state_dict
    from circuitspec.models.evaluate import default_chunk, uniform_failures

    try:
        model = load(args.model)
        what = "shipped"
    except ModelError:
        card = plan(args.model, steps=1000)
        model = model_from_tensors(card, state_dict(build_bridge(card.architecture, seed=1)))
        what = "untrained"
    chunk = args.chunk or default_chunk(next(model.bridge.parameters()).device)
    print(f"{what} model {model.name}, {torch.get_num_threads()} thread(s)")
    if args.compare:
        times = {}
        for rows in (chunk, 4096):
            start = time.perf_counter()
            uniform_failures(model, args.compare, chunk=rows)
            times[rows] = time.perf_counter() - start
        print(f"{args.compare:,} questions: {chunk}-row blocks {times[chunk]:.1f} s, 4096-row blocks {times[4096]:.1f} s: ratio {times[4096] / times[chunk]:.2f}x")
    start = time.perf_counter()
    result = uniform_failures(model, args.questions, chunk=chunk)
    seconds = time.perf_counter() - start
    print(f"{args.questions:,} questions in {chunk}-row blocks:")
    print(f"{seconds:.1f} s ({args.questions / seconds:,.0f} questions/s); failures {result.failures} = {result.failures_per_million:.1f}/M")


if __name__ == "__main__":
    main()
