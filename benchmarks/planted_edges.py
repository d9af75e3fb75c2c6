"""Edge benchmark: ``verify`` on N random planted circuits with true and false edges (``testing.edges``).

(The node recovery and gap figures are ``benchmarks/planted.py``; this one adds the edge variants.)

For each circuit (digits, heads, extra layers, split heads, decoys, positions, neuron
indices all drawn from one seed) it verifies the planted algorithm's hypothesis, one
wrong hypothesis (cycling through the wrong kinds) and one edge variant (cycling through
``testing.edges``: true edges through an unnamed carry mover, or one kind of false edge),
then prints:

- recovery: the right hypothesis holds with every node confirmed on exactly its planted
  sites (neuron nodes: exactly the planted neuron set), and the same allowing the top
  carry's neuron set to be a subset of the planted one (the matcher returns the smallest set
  that passes every interchange pair; zero-ablation needs more of the top carry's units);
- unit precision / recall: heads, MLPs and single neurons placed vs planted, pooled;
- false accepts: wrong hypotheses that hold (per kind);
- edges: recall of true edges (confirmed / true edges, the right hypothesis's and the
  variant's together) and false edges accepted (confirmed / false edges, per kind);
- time per circuit (plant + facts + both verdicts).

    python benchmarks/planted_edges.py --n 200            # the acceptance run
    python benchmarks/planted_edges.py --n 20 --digits 3  # quicker, three-digit circuits only
"""

from __future__ import annotations

import argparse
import random
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of random planted circuits")
    ap.add_argument("--digits", type=int, nargs="+", default=[2, 3], help="digit counts to draw from")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw of circuits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print one line per circuit")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from circuitspec.spec import Hypothesis
    from circuitspec.testing.planted import PlantError, PlantParams, plant
    from circuitspec.testing.edges import EDGE_KINDS, FALSE_KINDS, edge_hypothesis_yaml, edge_recovery
    from circuitspec.testing.recovery import WRONG_KINDS, hypothesis_yaml, recovery
    from circuitspec.verify.core import verify_model

    torch.set_num_threads(args.threads)
    console = Console()
    rng = random.Random(args.seed)
    rows = []
    refused = 0
    for i in range(args.n):
        params = PlantParams(
            digits=rng.choice(args.digits),
            n_heads=rng.randint(3, 5),
            extra_layers=rng.randint(0, 1),
            split_prob=rng.choice([0.0, 0.5, 1.0]),
            decoy_heads=rng.randint(0, 5),
            decoy_neurons=rng.randint(0, 3),
        )
        seed = rng.randrange(10**6)
        wrong = WRONG_KINDS[i % len(WRONG_KINDS)]
        variant = EDGE_KINDS[1 + i % (len(EDGE_KINDS) - 1)]
        start = time.perf_counter()
        try:
            planted = plant(params, seed)
        except PlantError:
            refused += 1
            continue
        right_h = Hypothesis.from_yaml(hypothesis_yaml(planted))
        wrong_h = Hypothesis.from_yaml(hypothesis_yaml(planted, wrong))
        edge_h = Hypothesis.from_yaml(edge_hypothesis_yaml(planted, variant))
        right, bad, edged = verify_model([right_h, wrong_h, edge_h], planted.model, seed=0)
        seconds = time.perf_counter() - start
        er, ev = edge_recovery(planted, right), edge_recovery(planted, edged, variant)
        rec = recovery(planted, right)
        top = f"SV{params.digits - 1}"
        others_exact = all(r.status == "confirmed" and r.exact for n, r in rec.nodes.items() if n != top)
        top_r = rec.nodes[top]
        top_subset = top_r.status == "confirmed" and not top_r.extra_neurons and bool(top_r.found)
        rows.append(
            {
                "digits": params.digits,
                "holds": right.status == "holds",
                "exact": right.status == "holds" and rec.recovered,
                "exact_but_top": right.status == "holds" and others_exact and top_subset,
                "precision": rec.precision,
                "recall": rec.recall,
                "top_core": top_r.core_found,
                "wrong": wrong,
                "false_accept": bad.status == "holds",
                "variant": variant,
                "true_edges": er.true_edges + ev.true_edges,
                "true_confirmed": er.true_confirmed + ev.true_confirmed,
                "false_edges": ev.false_edges,
                "false_accepted": ev.false_accepted,
                "variant_fails": variant not in FALSE_KINDS or edged.status == "fails",
                "edge_misses": er.missed + ev.missed + ev.accepted,
                "seconds": seconds,
            }
        )
        if args.verbose:
            r = rows[-1]
            console.print(
                f"{i:4d} d{params.digits} h{params.n_heads} +{params.extra_layers}L seed {seed}: right {right.status}"
                f" exact={r['exact']} p={r['precision']:.3f} r={r['recall']:.3f}; {wrong}: {bad.status};"
                f" edges {r['true_confirmed']}/{r['true_edges']} true confirmed, {r['false_accepted']}/{r['false_edges']} false"
                f" accepted ({variant}: {edged.status}); {seconds:.1f}s" + (f" MISSES {r['edge_misses']}" if r["edge_misses"] else ""),
                highlight=False,
            )

    def share(key, subset=None):
        sel = [r for r in rows if subset is None or subset(r)]
        return f"{sum(r[key] for r in sel)}/{len(sel)}" if sel else "-"

    table = Table(title=f"planted-circuit recovery ({len(rows)} circuits, {refused} parameter draws refused)")
    table.add_column("measure")
    for d in args.digits:
        table.add_column(f"{d} digits", justify="right")
    table.add_column("all", justify="right")

    def add(label, fn):
        table.add_row(label, *[fn(lambda r, d=d: r["digits"] == d) for d in args.digits], fn(None))

    add("right hypothesis holds", lambda s: share("holds", s))
    add("exact recovery (every node, every unit)", lambda s: share("exact", s))
    add("exact except top-carry neurons (subset)", lambda s: share("exact_but_top", s))
    add("top carry: every needed neuron found", lambda s: share("top_core", s))

    def mean_of(key):
        def fn(s):
            sel = [r[key] for r in rows if s is None or s(r)]
            return f"{statistics.mean(sel):.4f}" if sel else "-"

        return fn

    add("unit precision (mean)", mean_of("precision"))
    add("unit recall (mean)", mean_of("recall"))
    add("false accepts (wrong hypothesis holds)", lambda s: share("false_accept", s))
    for kind in WRONG_KINDS:
        add(f"  false accepts: {kind}", lambda s, kind=kind: share("false_accept", lambda r: r["wrong"] == kind and (s is None or s(r))))

    def pooled(num, den):
        def fn(s):
            sel = [r for r in rows if s is None or s(r)]
            return f"{sum(r[num] for r in sel)}/{sum(r[den] for r in sel)}" if sel else "-"

        return fn

    add("edge recall (true edges confirmed)", pooled("true_confirmed", "true_edges"))
    add("false edges accepted", pooled("false_accepted", "false_edges"))
    for kind in FALSE_KINDS:
        add(f"  false edges accepted: {kind}", lambda s, kind=kind: pooled("false_accepted", "false_edges")(
            lambda r: r["variant"] == kind and (s is None or s(r))))
    add("false-edge hypotheses that fail", lambda s: share("variant_fails", lambda r: r["variant"] in FALSE_KINDS and (s is None or s(r))))

    def timing(s):
        sel = [r["seconds"] for r in rows if s is None or s(r)]
        return f"{statistics.median(sel):.1f} / {max(sel):.1f}" if sel else "-"

    add("seconds per circuit (median / max)", timing)
    table.add_row("total seconds", *["" for _ in args.digits], f"{sum(r['seconds'] for r in rows):.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
