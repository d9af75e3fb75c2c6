"""The long run of the spec fuzzer (``tests/spec_fuzz.py``): N mutated specs, counted by outcome.

Each mutant must load (then expand and round-trip through ``to_yaml``) or raise a
``CircuitSpecError`` with file and line, within 10 s and 256 MiB (tracemalloc peak), and no
message may echo a file outside the spec's folder. Outcomes: loaded, error (located), and the
failures unlocated, leak, crash, slow, memory. An address-space limit (``--memory-gib``) turns
a runaway allocation into a counted MemoryError instead of a dead machine. Exit status 1 when
any mutant fails the promise.

Run: ``python benchmarks/fuzz_specs.py --n 10000`` (one thread; the spec layer never imports torch).
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from spec_fuzz import Outcome, make_fixture, mutants, run_one  # noqa: E402


def fuzz(n: int, seed_value: int, base: Path) -> list[tuple[str, str, Outcome]]:
    """(source spec, mutant text, outcome) for ``n`` mutants drawn by hypothesis from ``seed_value``."""
    results: list[tuple[str, str, Outcome]] = []

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @seed(seed_value)
    @given(mutants())
    def one(mutant):
        name, text = mutant
        results.append((name, text, run_one(text, base)))

    one()
    return results


def error_family(message: str) -> str:
    """A message without its location and specifics, to count errors by kind."""
    text = re.sub(r"^\S+?:\d+:\d+: ", "", message.splitlines()[0])
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\(got .*?\)$|\d+", "_", text)
    return text[:70]


def report(results: list[tuple[str, str, Outcome]], seconds: float) -> int:
    kinds = Counter(o.kind for _, _, o in results)
    times = sorted(o.seconds for _, _, o in results)
    print(f"{len(results)} mutants in {seconds:.0f} s")
    for kind in ("loaded", "error", "unlocated", "leak", "crash", "slow", "memory"):
        print(f"  {kind:10s} {kinds.get(kind, 0):6d}")
    print(f"time per mutant: median {1000 * statistics.median(times):.1f} ms, p99 {1000 * times[int(0.99 * (len(times) - 1))]:.0f} ms, max {times[-1]:.2f} s")
    print(f"runs over 10 s: {sum(t > 10 for t in times)}; peak memory (tracemalloc): max {max(o.peak_bytes for _, _, o in results) / 2**20:.1f} MiB")
    print("most common errors:")
    for family, count in Counter(error_family(o.detail) for _, _, o in results if o.kind == "error").most_common(12):
        print(f"  {count:6d}  {family}")
    bad = [(name, text, o) for name, text, o in results if not o.ok]
    for name, text, o in bad[:5]:
        print(f"\n{o.kind} (from {name}): {o.detail[:300]}\n--- spec (first 600 characters):\n{text[:600]}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="mutants to run")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (same seed, same mutants)")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit of this process (0: none)")
    args = parser.parse_args()
    if args.memory_gib:
        limit = int(args.memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with tempfile.TemporaryDirectory() as tmp:
        base = make_fixture(Path(tmp))
        start = time.perf_counter()
        results = fuzz(args.n, args.seed, base)
        return report(results, time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
