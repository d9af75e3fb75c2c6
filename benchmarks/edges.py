"""Edge tests: the engine's batched path patching against one TransformerLens-hooked edge at a time.

    python benchmarks/edges.py [--model add_d6_l2_h3_t8K_s372001] [--edges 24] [--pairs 128] [--threads 1]

Draws ``--edges`` edges between real sites of a shipped model, as the verifier builds them
(sender: one or two co-located layer-0 heads; receiver: a later head or MLP at the same or a
later position; frozen: other sites that can lie between), ``--fan`` edges per sender sharing
its ``--pairs`` base / source question pairs (the verifier draws pairs per source variable, and
a node feeds several). Then runs them

- batched: ``engine.paths.path_patch``, every edge's rows in shared passes;
- as a loop: ``tests/naive.py``'s ``path_patch_naive``, two ``bridge.run_with_hooks`` passes
  per edge (sender patched and the others frozen while the receiver is recorded, then only the
  receiver set), sources and bases read with ``run_with_cache``,

checks that both give identical answers on every row, and prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # naive.py: the hooked oracle


def draw_edges(engine, n_edges: int, n_pairs: int, fan: int, seed: int):
    """``n_edges`` PathPatch objects between the model's sites (see the module docstring)."""
    from circuitspec.engine.paths import PathPatch
    from circuitspec.match.edges import between

    rng = random.Random(seed)
    heads0 = [s for s in engine.sites(("head",)) if s.layer == 0 and s.position >= engine.layout.sign - 4]
    later = [s for s in engine.sites(("head", "mlp")) if s.layer > 0 or s.kind == "mlp"]
    out = []
    while len(out) < n_edges:
        first = rng.choice(heads0)
        same = [s for s in heads0 if (s.position, s.layer) == (first.position, first.layer) and s != first]
        sender = tuple(sorted([first] + ([rng.choice(same)] if same and rng.random() < 0.5 else [])))
        targets = [s for s in later if s.position >= first.position and (s.layer > 0 or s.position == first.position)]
        base = engine.questions(n_pairs, seed=2 * len(out))
        source = engine.questions(n_pairs, seed=2 * len(out) + 1)
        for receiver in rng.sample(targets, min(fan, len(targets), n_edges - len(out))):
            others = [s for s in engine.sites(("head", "mlp")) if s not in sender and s != receiver]
            frozen = between(sender, (receiver,), rng.sample(others, min(8, len(others))))
            out.append(PathPatch(sender, (receiver,), frozen, base, source, label=f"edge {len(out)}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="add_d6_l2_h3_t8K_s372001")
    ap.add_argument("--edges", type=int, default=24)
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--fan", type=int, default=3, help="edges per sender (sharing its pairs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    from circuitspec.engine import Engine
    from circuitspec.engine.paths import path_patch
    from circuitspec.models import load
    from naive import path_patch_naive

    engine = Engine(load(a.model))
    patches = draw_edges(engine, a.edges, a.pairs, a.fan, a.seed)
    path_patch(engine, patches[:1])  # warm up both paths once
    path_patch_naive(engine, patches[:1])

    start = time.perf_counter()
    batched = path_patch(engine, patches)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = path_patch_naive(engine, patches)
    t_loop = time.perf_counter() - start

    same = all(torch.equal(b.cpu(), n.cpu()) for b, n in zip(batched.pred, looped))
    changed = sum(int((b.cpu() != engine.clean(p.base).pred.cpu()).any(dim=1).sum()) for b, p in zip(batched.pred, patches))
    rows = a.edges * a.pairs
    print(f"{a.model}: {a.edges} edges x {a.pairs} pairs ({rows} rows, {a.fan} edges per sender),"
          f" {changed} rows whose answer the edge changes")
    print(f"batched path patching: {t_batched:.2f} s ({batched.passes} passes)")
    print(f"one hooked edge at a time: {t_loop:.2f} s ({4 * a.edges} hooked passes)")
    print(f"ratio loop / batched: {t_loop / t_batched:.1f}x")
    print("answers identical on every row" if same else "ANSWERS DIFFER between batched and looped")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
