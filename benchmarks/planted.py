"""Recovery benchmark: ``verify`` on N random planted circuits with known ground truth.

For each circuit (digits, heads, extra layers, split heads, decoys, positions, neuron
indices all drawn from one seed) it verifies the planted algorithm's hypothesis, one
wrong hypothesis (cycling through the wrong kinds) and the hypothesis with one planted node
left out (``testing.planted.left_out_hypothesis``, the node drawn from the circuit's seed),
then prints:

- recovery: the right hypothesis holds with every node confirmed on exactly its planted
  sites (neuron nodes: exactly the planted neuron set), and the same allowing the top
  carry's neuron set to be a subset of the planted one (the matcher returns the smallest set
  that passes every interchange pair; zero-ablation needs more of the top carry's units);
- unit precision / recall: heads, MLPs and single neurons placed vs planted, pooled;
- false accepts: wrong hypotheses that hold (per kind);
- edges: the true edges of the right hypothesis and of one edge variant per circuit
  (``testing.edges``: through an unnamed carry mover, or a false edge of some kind) confirmed,
  the false ones rejected (edge recall, false edges accepted);
- one node left out: the verdict carries a gap report, its first-ranked unit is the left-out
  node's site (a head of it, both heads of it, or its MLP), and its smallest set is exactly
  the node's sites and reaches the threshold;
- time per circuit (plant + facts + the four verdicts).

    python benchmarks/planted.py --n 200            # the acceptance run
    python benchmarks/planted.py --n 20 --digits 3  # quicker, three-digit circuits only
    python benchmarks/planted.py --jobs 2           # two circuits at a time
    python benchmarks/planted.py --route answer     # every edge by the answer route (through the target or around it)
"""

from __future__ import annotations

import argparse
import random
import statistics
import time


def circuit(case: tuple) -> dict | None:
    """Plant one circuit and verify its right, one wrong, one edge-variant and one left-out hypothesis (None: refused)."""
    import torch

    from circuitspec.spec import Hypothesis
    from circuitspec.testing.edges import FALSE_KINDS, edge_hypothesis_yaml, edge_recovery
    from circuitspec.testing.planted import PlantError, is_site_of, left_out_hypothesis, plant
    from circuitspec.testing.recovery import hypothesis_yaml, recovery
    from circuitspec.verify.core import verify_model

    i, params, seed, wrong, variant, threads, route = case
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        planted = plant(params, seed)
    except PlantError:
        return None
    left_out = random.Random(f"left-out/{seed}").choice(sorted(planted.truth))
    right_h = Hypothesis.from_yaml(edge_hypothesis_yaml(planted, None, route))
    wrong_h = Hypothesis.from_yaml(hypothesis_yaml(planted, wrong))
    edge_h = Hypothesis.from_yaml(edge_hypothesis_yaml(planted, variant, route))
    right, bad, edged, lacking = verify_model(
        [right_h, wrong_h, edge_h, left_out_hypothesis(planted, left_out)], planted.model, seed=0
    )
    seconds = time.perf_counter() - start
    rec = recovery(planted, right)
    er, ev = edge_recovery(planted, right), edge_recovery(planted, edged, variant)
    top = f"SV{params.digits - 1}"
    others_exact = all(r.status == "confirmed" and r.exact for n, r in rec.nodes.items() if n != top)
    top_r = rec.nodes[top]
    top_subset = top_r.status == "confirmed" and not top_r.extra_neurons and bool(top_r.found)
    gap = lacking.gap
    first = gap.ranking[0].sites if gap is not None and gap.ranking else []
    chosen = [s for r in gap.smallest_set for s in r.sites] if gap is not None else []
    return {
        "i": i,
        "params": params,
        "seed": seed,
        "digits": params.digits,
        "holds": right.status == "holds",
        "exact": right.status == "holds" and rec.recovered,
        "exact_but_top": right.status == "holds" and others_exact and top_subset,
        "precision": rec.precision,
        "recall": rec.recall,
        "top_core": top_r.core_found,
        "wrong": wrong,
        "wrong_status": bad.status,
        "false_accept": bad.status == "holds",
        "variant": variant,
        "variant_status": edged.status,
        "true_edges": er.true_edges + ev.true_edges,
        "true_confirmed": er.true_confirmed + ev.true_confirmed,
        "false_edges": ev.false_edges,
        "false_accepted": ev.false_accepted,
        "variant_fails": variant not in FALSE_KINDS or edged.status == "fails",
        "left_out": left_out,
        "left_gap": gap is not None,
        "left_first": bool(first) and all(is_site_of(planted, left_out, s) for s in first),
        "left_set": bool(gap and gap.reached) and bool(chosen) and all(is_site_of(planted, left_out, s) for s in chosen),
        "left_top": "+".join(first),
        "right_status": right.status,
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of random planted circuits")
    ap.add_argument("--digits", type=int, nargs="+", default=[2, 3], help="digit counts to draw from")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw of circuits")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per circuit")
    ap.add_argument("--jobs", type=int, default=1, help="circuits verified in parallel processes (same results)")
    ap.add_argument("--verbose", action="store_true", help="print one line per circuit")
    ap.add_argument("--route", choices=["target", "answer"], default="target", help="the route every edge of the edge hypotheses claims")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from circuitspec.testing.edges import EDGE_KINDS, FALSE_KINDS
    from circuitspec.testing.planted import PlantParams
    from circuitspec.testing.recovery import WRONG_KINDS

    console = Console()
    rng = random.Random(args.seed)
    cases = []
    for i in range(args.n):
        params = PlantParams(
            digits=rng.choice(args.digits),
            n_heads=rng.randint(3, 5),
            extra_layers=rng.randint(0, 1),
            split_prob=rng.choice([0.0, 0.5, 1.0]),
            decoy_heads=rng.randint(0, 5),
            decoy_neurons=rng.randint(0, 3),
        )
        variant = EDGE_KINDS[1 + i % (len(EDGE_KINDS) - 1)]
        cases.append((i, params, rng.randrange(10**6), WRONG_KINDS[i % len(WRONG_KINDS)], variant, args.threads, args.route))
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(circuit, cases, chunksize=1)
    else:
        results = map(circuit, cases)
    rows = []
    refused = 0
    for r in results:
        if r is None:
            refused += 1
            continue
        rows.append(r)
        if args.verbose:
            p = r["params"]
            console.print(
                f"{r['i']:4d} d{p.digits} h{p.n_heads} +{p.extra_layers}L seed {r['seed']}: right {r['right_status']}"
                f" exact={r['exact']} p={r['precision']:.3f} r={r['recall']:.3f}; {r['wrong']}: {r['wrong_status']};"
                f" edges {r['true_confirmed']}/{r['true_edges']} true confirmed, {r['false_accepted']}/{r['false_edges']} false accepted"
                f" ({r['variant']}: {r['variant_status']});"
                f" without {r['left_out']}: gap first {r['left_top'] or '-'} ({'right' if r['left_first'] else 'WRONG'}); {r['seconds']:.1f}s",
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
    add("one node left out: verdict has a gap report", lambda s: share("left_gap", s))
    add("one node left out: its site ranked first", lambda s: share("left_first", s))
    add("one node left out: smallest set = its sites, reaches 0.95", lambda s: share("left_set", s))
    for kind in WRONG_KINDS:
        add(f"  false accepts: {kind}", lambda s, kind=kind: share("false_accept", lambda r: r["wrong"] == kind and (s is None or s(r))))

    def timing(s):
        sel = [r["seconds"] for r in rows if s is None or s(r)]
        return f"{statistics.median(sel):.1f} / {max(sel):.1f}" if sel else "-"

    add("seconds per circuit (median / max)", timing)
    table.add_row("total seconds", *["" for _ in args.digits], f"{sum(r['seconds'] for r in rows):.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
