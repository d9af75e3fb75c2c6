"""Label benchmark: ``label`` on N random planted circuits (known truth), and on a zoo model.

For each planted circuit (digits, heads, extra layers, split heads, decoys, positions, neuron
indices all drawn from one seed) it measures facts and labels from an empty cache and scores
them against the ground truth (``testing.label_truth``):

- label recall: planted nodes whose site is labelled with the planted variable;
- label precision: labels that name a planted node's variable on its own site;
- decoys labelled, neuron sets with a neuron outside the planted ones;
- CPU seconds per circuit (facts + labels).

Then, with ``--zoo NAME``, the CPU time of labelling that zoo model from an empty cache (facts
separately), and of the same labelling with every (placement, variable) test in an engine run of
its own (the loop ``label`` replaces), as a ratio measured in this process; the two labellings
must give the same JSON (exit status 1 otherwise).

    python benchmarks/label.py --n 200                                   # the acceptance run
    python benchmarks/label.py --n 0 --zoo add_d6_l2_h3_t4K_s173289      # zoo timing only
"""

from __future__ import annotations

import argparse
import random
import statistics
import time


def planted_rows(n: int, digits: list[int], seed: int, verbose: bool, console) -> tuple[list[dict], int]:
    from circuitspec.engine import Engine
    from circuitspec.engine.facts import load_or_compute
    from circuitspec.match.label import LabelParams, label
    from circuitspec.testing.label_truth import label_recovery
    from circuitspec.testing.planted import PlantError, PlantParams, plant

    rng = random.Random(seed)
    rows, refused = [], 0
    for i in range(n):
        params = PlantParams(
            digits=rng.choice(digits),
            n_heads=rng.randint(3, 5),
            extra_layers=rng.randint(0, 1),
            split_prob=rng.choice([0.0, 0.5, 1.0]),
            decoy_heads=rng.randint(0, 5),
            decoy_neurons=rng.randint(0, 3),
        )
        circuit_seed = rng.randrange(10**6)
        try:
            planted = plant(params, circuit_seed)
        except PlantError:
            refused += 1
            continue
        start = time.process_time()
        engine = Engine(planted.model)
        labels = label(engine, load_or_compute(engine, use_cache=False), LabelParams(neurons=True))
        seconds = time.process_time() - start
        rec = label_recovery(planted, labels)
        rows.append({
            "digits": params.digits, "recalled": len(rec.recalled), "nodes": len(rec.recalled) + len(rec.missed),
            "correct": rec.correct, "given": rec.correct + len(rec.wrong), "decoys": len(rec.decoys_labelled),
            "extra_neurons": len(rec.extra_neurons), "seconds": seconds,
        })
        if verbose or rec.missed or rec.wrong:
            console.print(
                f"{i:4d} d{params.digits} h{params.n_heads} seed {circuit_seed}: recall {rec.recall:.3f} precision {rec.precision:.3f}"
                f" missed {rec.missed} wrong {rec.wrong} decoys {rec.decoys_labelled}; {seconds:.1f}s", highlight=False
            )
    return rows, refused


def zoo_timing(name: str, console) -> None:
    """CPU seconds of facts and of labels from an empty cache, and of the same labelling with every
    (placement, variable) test in an engine run of its own; the ratio, and whether the labels match."""
    from circuitspec.engine import Engine
    from circuitspec.engine.facts import load_or_compute
    from circuitspec.match import causal, label as label_mod
    from circuitspec.models import load

    model = load(name)
    engine = Engine(model)
    t0 = time.process_time()
    facts = load_or_compute(engine, use_cache=False)
    t1 = time.process_time()
    labels = label_mod.label(engine, facts)
    t2 = time.process_time()

    def one_test_per_run(run, placements, stage):
        """``_Run.score_all`` done the slow way: each testable (placement, variable) in its own engine run."""
        out = []
        for p in placements:
            served = run.served(p)
            mine: dict = {}
            for test in run.plan:
                if not run.testable(test, p, served):
                    continue
                t = label_mod.Tested(causal.score(run.engine, run.pairs(test), [p], [served])[0], test[1])
                mine[test[0]] = run._better(mine[test[0]], t) if test[0] in mine else t
                run.tests += 1
            out.append(mine)
        return out

    batched = label_mod._Run.score_all
    label_mod._Run.score_all = one_test_per_run
    try:
        t3 = time.process_time()
        looped = label_mod.label(Engine(model), facts)  # a fresh engine: no clean passes recalled from the run above
        t4 = time.process_time()
    finally:
        label_mod._Run.score_all = batched
    c = labels.counts()
    same = looped.to_json() == labels.to_json()
    console.print(
        f"{name}: facts {t1 - t0:.1f} s CPU, labels {t2 - t1:.1f} s CPU ({c['labelled']} labelled, {c['unexplained']} unexplained,"
        f" {c['in_set']} in a head set; {labels.tests} tests over {labels.variables_tested} variable instances);"
        f" the same labelling one test per engine run {t4 - t3:.1f} s CPU: {(t4 - t3) / max(t2 - t1, 1e-9):.1f}x;"
        f" labels identical: {'yes' if same else 'NO'}", highlight=False
    )
    if not same:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of random planted circuits")
    ap.add_argument("--digits", type=int, nargs="+", default=[2, 3], help="digit counts to draw from")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw of circuits")
    ap.add_argument("--zoo", default=None, help="also time labelling this zoo model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print one line per circuit")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(args.threads)
    console = Console()
    rows, refused = planted_rows(args.n, args.digits, args.seed, args.verbose, console)
    if rows:
        table = Table(title=f"labels on planted circuits ({len(rows)} circuits, {refused} parameter draws refused)")
        table.add_column("measure")
        for d in args.digits:
            table.add_column(f"{d} digits", justify="right")
        table.add_column("all", justify="right")

        def add(label, fn):
            table.add_row(label, *[fn([r for r in rows if r["digits"] == d]) for d in args.digits], fn(rows))

        def ratio(num, den):
            return lambda sel: f"{sum(r[num] for r in sel) / max(1, sum(r[den] for r in sel)):.4f} ({sum(r[num] for r in sel)}/{sum(r[den] for r in sel)})"

        add("label recall (planted nodes)", ratio("recalled", "nodes"))
        add("label precision (labels given)", ratio("correct", "given"))
        add("circuits with recall and precision 1", lambda sel: f"{sum(r['recalled'] == r['nodes'] and r['correct'] == r['given'] for r in sel)}/{len(sel)}")
        add("decoy sites labelled", lambda sel: str(sum(r["decoys"] for r in sel)))
        add("neurons outside the planted sets", lambda sel: str(sum(r["extra_neurons"] for r in sel)))
        add("CPU s per circuit (median / max)", lambda sel: f"{statistics.median(r['seconds'] for r in sel):.1f} / {max(r['seconds'] for r in sel):.1f}" if sel else "-")
        console.print(table)
    if args.zoo:
        zoo_timing(args.zoo, console)


if __name__ == "__main__":
    main()
