"""What the gap report adds to ``verify`` of a failing hypothesis, in CPU time, in one process.

    python benchmarks/gap_cost.py [--spec specs/addition.yaml] [--model add_d6_l2_h3_t8K_s372001]

Verifies the hypothesis on the model three times on one thread, facts cached by the first run:
with the gap report (as ``verify`` runs it), without it (``verify.gap.falls_short`` answering
no), and with it again; prints the CPU seconds of each, the ratio (with / without: the job may
not get more than 1.5x slower), and the gap report's smallest set. The resample-ablation metrics
(two interventions) are in both.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="specs/addition.yaml")
    ap.add_argument("--model", default="add_d6_l2_h3_t8K_s372001")
    ap.add_argument("--json", default=None, help="also write the verdict (with its gap report) to this file")
    args = ap.parse_args()

    import torch

    from circuitspec.models import load
    from circuitspec.render.gap import gap_lines, repair_text
    from circuitspec.verify import gap
    from circuitspec.verify.core import verify

    torch.set_num_threads(1)
    model = load(args.model)
    verify(args.spec, model)  # facts into the cache, imports warm

    def timed(with_gap: bool):
        real = gap.falls_short
        gap.falls_short = real if with_gap else (lambda *a, **k: False)
        try:
            start = time.process_time()
            verdict = verify(args.spec, model)
            return time.process_time() - start, verdict
        finally:
            gap.falls_short = real

    first, verdict = timed(True)
    without, plain = timed(False)
    second, _ = timed(True)
    with_gap = min(first, second)
    print(f"{args.spec} on {args.model}: {verdict.status}, faithfulness {verdict.metrics.faithfulness.value:.3f}")
    print(f"CPU seconds: with the gap report {first:.1f} / {second:.1f}, without {without:.1f}; ratio {with_gap / without:.2f}x")
    assert plain.gap is None and plain.status == verdict.status
    for line in gap_lines(verdict) or ["(no gap report: the verdict does not fall short)"]:
        print(line)
    if verdict.gap is not None:
        for i, step in enumerate(verdict.gap.smallest_set, 1):
            print(f"  set {i}. {repair_text(step)}")
    if args.json:
        Path(args.json).write_text(verdict.to_json())


if __name__ == "__main__":
    main()
