"""Attention-only planted circuits (``testing.planted_attn``): exactness and verify against ground truth.

For each circuit it counts the questions answered wrong (all of them for 2 digits), then verifies
seven hypotheses on the hooked engine path: the planted one (must hold on exactly the planted
heads), the three wrong-site kinds (``recovery.WRONG_KINDS``, must fail) and the three false-edge
kinds (``testing.edges.FALSE_KINDS``, must fail without accepting a false edge). One JSON line
per circuit, then a summary (the README's "Other architectures" table).

    python benchmarks/planted_attn.py              # the README's circuits: 8 of 2 digits
    python benchmarks/planted_attn.py --digits 3   # one 3-digit circuit (1,000,000 questions)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

CASES = {2: [(4, s) for s in range(6)] + [(5, 10), (6, 11)], 3: [(5, 1)]}  # digits -> (n_heads, seed)


def circuit(digits: int, n_heads: int, seed: int) -> dict:
    from circuitspec.spec import Hypothesis
    from circuitspec.testing.edges import FALSE_KINDS, edge_hypothesis_yaml, edge_recovery
    from circuitspec.testing.planted import all_questions, answers
    from circuitspec.testing.planted_attn import AttnPlantParams, plant_attn
    from circuitspec.testing.recovery import WRONG_KINDS, hypothesis_yaml, recovery
    from circuitspec.verify.core import verify_model

    planted = plant_attn(AttnPlantParams(digits=digits, n_heads=n_heads, decoy_heads=3), seed=seed)
    qs = all_questions(digits)
    wrong_answers = int((answers(planted.bridge, qs, planted.layout) != planted.task.answers(qs)).any(1).sum())
    texts = [hypothesis_yaml(planted)] + [hypothesis_yaml(planted, w) for w in WRONG_KINDS]
    texts += [edge_hypothesis_yaml(planted, k) for k in FALSE_KINDS]
    start = time.time()
    right, *others = verify_model([Hypothesis.from_yaml(t) for t in texts], planted.model, seed=0)
    rec = recovery(planted, right)
    edges = [edge_recovery(planted, v, k) for v, k in zip(others[3:], FALSE_KINDS)]
    return dict(
        digits=digits, n_heads=n_heads, seed=seed, carry_position=planted.carry_position, questions=len(qs),
        wrong_answers=wrong_answers, engine_path=right.engine_path, right=right.status, exact=rec.recovered,
        precision=rec.precision, recall=rec.recall, wrong_sites_failing=sum(v.status == "fails" for v in others[:3]),
        false_edge_hypotheses_failing=sum(v.status == "fails" for v in others[3:]),
        false_edges=sum(e.false_edges for e in edges), false_edges_accepted=sum(e.false_accepted for e in edges),
        verify_seconds=round(time.time() - start, 1),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, choices=sorted(CASES), default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for n_heads, seed in CASES[args.digits]:
        rows.append(circuit(args.digits, n_heads, seed))
        print(json.dumps(rows[-1]), flush=True)
    n = len(rows)
    print(
        f"{n} circuits of {args.digits} digits: answers wrong {sum(r['wrong_answers'] for r in rows)}; "
        f"true hypothesis holds on exactly the planted heads {sum(r['right'] == 'holds' and r['exact'] for r in rows)}/{n}; "
        f"wrong-site hypotheses failing {sum(r['wrong_sites_failing'] for r in rows)}/{3 * n}; "
        f"false-edge hypotheses failing {sum(r['false_edge_hypotheses_failing'] for r in rows)}/{3 * n} "
        f"({sum(r['false_edges_accepted'] for r in rows)} of {sum(r['false_edges'] for r in rows)} false edges accepted); "
        f"verify median {statistics.median(r['verify_seconds'] for r in rows):.1f} s"
    )


if __name__ == "__main__":
    main()
