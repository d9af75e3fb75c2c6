"""How fast the arithmetic task makes data: 1,000,000 6-digit questions with every variable and class.

Compared, in the same process, with a plain-Python loop that does the same per question
(timed on a subsample and scaled). Run: ``python benchmarks/task_generation.py``.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from circuitspec.tasks import ArithmeticTask

PER_DIGIT = ("SA", "SC", "SS", "ST", "SV", "MD", "MB", "MZ", "MT", "MV", "ND", "NB", "NZ", "NT", "NV", "GT")


def python_question(rng: random.Random, op: str, digits: int) -> tuple[str, dict, str]:
    """One question, its variables and class, the straightforward way."""
    x, y = rng.randrange(10**digits), rng.randrange(10**digits)
    sign = rng.choice("+-") if op == "mix" else "+" if op == "add" else "-"
    value = x + y if sign == "+" else x - y
    text = f"{x:0{digits}d}{sign}{y:0{digits}d}=" + ("-" if value < 0 else "+") + f"{abs(value):0{digits + 1}d}"
    v = {name: [] for name in PER_DIGIT}
    carry = borrow = nborrow = 0
    for n in range(digits):
        a, b = x // 10**n % 10, y // 10**n % 10
        s, d = a + b, a - b
        st = 2 if s >= 10 else 1 if s == 9 else 0
        mt = 2 if d < 0 else 1 if d == 0 else 0
        nt = 2 if d > 0 else 1 if d == 0 else 0
        carry = carry if st == 1 else int(st == 2)
        borrow = borrow if mt == 1 else int(mt == 2)
        nborrow = nborrow if nt == 1 else int(nt == 2)
        row = (s % 10, int(s >= 10), int(s == 9), st, carry, d % 10, int(d < 0), int(d == 0), mt, borrow,
               -d % 10, int(d > 0), int(d == 0), nt, nborrow, int(d > 0))
        for name, val in zip(PER_DIGIT, row):
            v[name].append(val)
    v["A"] = [abs(value) // 10**n % 10 for n in range(digits + 1)]
    v["OPR"], v["SGN"] = int(sign == "-"), int(x < y)
    family, tri = ("S", v["ST"]) if sign == "+" else ("M", v["MT"]) if x >= y else ("N", v["NT"])
    run = best = 0
    for t in tri:
        run = 1 if t == 2 else run + 1 if t == 1 and run else 0
        best = max(best, run)
    top = 5 if family == "S" else 4
    return text, v, f"{family}{max(min(best, top), 1 if family == 'N' else 0)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--digits", type=int, default=6)
    parser.add_argument("--subsample", type=int, default=20_000, help="questions for the plain-Python loop")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"{args.n:,} questions of {args.digits} digits, {args.threads} torch thread(s)")
    for op in ("add", "sub", "mix"):
        task = ArithmeticTask(op, args.digits)
        task.generate(1000, torch.Generator().manual_seed(0))  # warm-up
        start = time.perf_counter()
        tokens = task.generate(args.n, torch.Generator().manual_seed(0))
        generated = time.perf_counter()
        variables = task.all_variables(tokens)
        computed = time.perf_counter()
        classes = task.classes(tokens, variables=variables)
        vectorised = time.perf_counter() - start
        assert classes.shape == (args.n,) and variables["A"].shape == (args.n, args.digits + 1)

        rng = random.Random(0)
        loop_start = time.perf_counter()
        for _ in range(args.subsample):
            python_question(rng, op, args.digits)
        loop = (time.perf_counter() - loop_start) * args.n / args.subsample
        print(f"  {op}: vectorised {vectorised:.2f} s (tokens {generated - start:.2f}, variables "
              f"{computed - generated:.2f}, classes {start + vectorised - computed:.2f}); plain-Python loop "
              f"{loop:.1f} s (scaled from {args.subsample:,}); {loop / vectorised:.0f}x")

    task = ArithmeticTask("add", args.digits)
    start = time.perf_counter()
    tokens = task.generate(args.n, torch.Generator().manual_seed(0), cls="S5")
    print(f"  add, constructed class S5: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
