"""Do verdicts and placed sites survive a change of question-set seed?

Verifies each spec on each model under several seeds (every random draw changes: reference
questions for the means, fact questions, counterfactual pairs, metric questions) and prints,
per node, the placements seen; a node whose status or sites differ between seeds is a flip.

    python benchmarks/seed_stability.py specs/addition_1layer.yaml -m add_d5_l1_h3_t6K_s372001 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from circuitspec.models import load as load_model
from circuitspec.spec import load
from circuitspec.verify.core import verify_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("-m", "--models", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    hyps = [load(s) for s in args.specs]
    for name in args.models:
        model = load_model(name)
        seen: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
        status: dict[str, dict[int, str]] = defaultdict(dict)
        start = time.perf_counter()
        for seed in args.seeds:
            for v in verify_model(hyps, model, seed=seed):
                status[v.hypothesis][seed] = v.status
                for n in v.nodes:
                    seen[(v.hypothesis, n.node)][seed] = f"{n.status}:{'+'.join(n.sites)}"
        took = time.perf_counter() - start
        print(f"\n{model.name}: {len(args.seeds)} seeds in {took:.0f} s")
        for h, by_seed in status.items():
            print(f"  {h}: " + ", ".join(f"seed {s} {st}" for s, st in sorted(by_seed.items())))
        flips = {key: by_seed for key, by_seed in seen.items() if len(set(by_seed.values())) > 1}
        stable = len(seen) - len(flips)
        print(f"  nodes stable across seeds: {stable}/{len(seen)}")
        for (h, node), by_seed in sorted(flips.items()):
            print(f"  FLIP {h}.{node}: " + "; ".join(f"{s}={p}" for s, p in sorted(by_seed.items())))


if __name__ == "__main__":
    main()
