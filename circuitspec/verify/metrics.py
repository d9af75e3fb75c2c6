"""Circuit-level metrics of a placed hypothesis, each with a bootstrap interval.

- faithfulness: question accuracy when every head and MLP site outside the circuit is
  mean-ablated (does the circuit alone do the task?);
- completeness: share of the questions the clean model gets right that fail when the
  circuit's sites are mean-ablated (does the behaviour depend on the circuit?);
- minimality: for each node, how much faithfulness drops when its sites are ablated
  as well (is every node needed?).

All are measured on one seeded, class-stratified question set disjoint from the
engine's reference (mean) questions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.engine.sites import all_sites
from circuitspec.stats import bootstrap
from circuitspec.verify.verdict import CircuitMetrics, Estimate


def metric_questions(engine: Engine, per_class: int, seed: int) -> torch.Tensor:
    """``per_class`` seeded questions of every class that exists for the model's task."""
    return torch.cat([engine.questions(per_class, seed=seed, cls=c) for c in engine.task.available_classes()])


def complement(circuit: Sequence[Site], engine: Engine) -> list[Site]:
    """Every head and MLP site not in the circuit; an MLP with some circuit neurons keeps them."""
    inside = set(circuit)
    kept_neurons: dict[tuple[int, int], set[int]] = {}
    for s in circuit:
        if s.kind == "neurons":
            kept_neurons.setdefault((s.layer, s.position), set()).update(s.neurons)
    out = []
    for s in all_sites(engine.shape):
        if s in inside:
            continue
        kept = kept_neurons.get((s.layer, s.position))
        if s.kind == "mlp" and kept:
            rest = [i for i in range(engine.shape.d_mlp) if i not in kept]
            if rest:
                out.append(Site.for_neurons(s.layer, s.position, rest))
            continue
        out.append(s)
    return out


def _estimate(values: torch.Tensor, seed: int) -> Estimate:
    value, low, high = bootstrap(values, seed=seed)
    return Estimate(value=round(value, 6), low=round(low, 6), high=round(high, 6), n=int(values.numel()), method="bootstrap")


def measure(
    engine: Engine,
    circuit: Sequence[Site],
    node_sites: Mapping[str, Sequence[Site]],
    *,
    questions: torch.Tensor,
    seed: int,
) -> CircuitMetrics:
    """Faithfulness, completeness and per-node minimality of ``circuit`` on ``questions``."""
    clean = engine.clean(questions).question_correct.cpu()
    if not circuit:
        return CircuitMetrics(clean_accuracy=_estimate(clean.float(), seed))
    outside = complement(circuit, engine)
    node_ids = sorted(node_sites)
    ivs = [Intervention("mean", tuple(outside)), Intervention("mean", tuple(circuit))]
    ivs += [Intervention("mean", tuple(set(outside) | set(node_sites[n]))) for n in node_ids]
    out = engine.run(questions, ivs)
    correct = out.question_correct.cpu()  # [I, B]
    faithful = correct[0].float()
    broken = (~correct[1] & clean).float()[clean]
    minimality = {
        n: round(float(faithful.mean() - correct[2 + i].float().mean()), 6) for i, n in enumerate(node_ids)
    }
    return CircuitMetrics(
        faithfulness=_estimate(faithful, seed),
        completeness=_estimate(broken, seed + 1),
        minimality=minimality,
        clean_accuracy=_estimate(clean.float(), seed + 2),
    )
