"""Shared tests: the specs verified on one model in one call (``match.Memo`` shares their
counterfactual pairs and placement scores) against one call per spec, in the same process.

Both start from the same cached facts, each call with an engine of its own; the verdicts must be
byte for byte the same (exit status 1 otherwise). Prints CPU seconds and the ratio.

    python benchmarks/shared_tests.py                               # every spec that applies, a 6-digit 2-layer model
    python benchmarks/shared_tests.py -m add_d5_l1_h3_t15K_s372001  # another zoo model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="add_d6_l2_h3_t4K_s173289")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from circuitspec.engine import Engine
    from circuitspec.engine.cache import JsonCache
    from circuitspec.engine.facts import FactsParams, load_or_compute
    from circuitspec.models import load as load_model
    from circuitspec.spec import applies_to, load
    from circuitspec.verify.core import verify_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    specs = [h for h in (load(p) for p in sorted(SPECS.glob("*.yaml"))) if applies_to(h, model.card).ok]
    with tempfile.TemporaryDirectory() as cache:
        load_or_compute(Engine(model, seed=0), FactsParams.preset(0), cache=JsonCache(cache))  # both read these facts
        start = time.process_time()
        alone = [verify_model([h], model, seed=0, cache_dir=cache)[0] for h in specs]
        t_alone = time.process_time() - start
        start = time.process_time()
        together = verify_model(specs, model, seed=0, cache_dir=cache)
        t_together = time.process_time() - start
    same = [a.to_json() for a in alone] == [t.to_json() for t in together]
    print(f"{args.model}: {len(specs)} specs ({', '.join(h.name for h in specs)})")
    print(f"one call per spec: {t_alone:.1f} s CPU")
    print(f"one call, shared tests: {t_together:.1f} s CPU")
    print(f"ratio: {t_alone / t_together:.2f}x; verdicts identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
