"""Circuit-level metrics of a placed hypothesis, each with a bootstrap interval.

- faithfulness: share of the questions the clean model gets right that stay right when
  every head and MLP site outside the circuit is mean-ablated (does the circuit alone do
  what the model does?);
- completeness: share of the questions the clean model gets right that fail when the
  circuit's sites are mean-ablated (does the behaviour depend on the circuit?);
- minimality: for each node, how much faithfulness drops when its sites are ablated
  as well (is every node needed?).

Faithfulness and completeness are also measured under *resample* ablation: every ablated site
takes its activation from another question of the same class (one seeded within-class shuffle of
the metric questions, patched as an interchange), because circuit scores are known to swing with
the choice of ablation. Mean ablation stays the default the checks are judged on; the verdict
says when the two disagree.

All are measured on one seeded, class-stratified question set disjoint from the
engine's reference (mean) questions, over the answer tokens in the hypothesis's
*scope*: those some node's variable can change in the task's causal model. An addition
hypothesis says nothing about the '+' sign token, so the sites that emit it are not
held against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from circuitspec.engine import Engine, Intervention, Site
from circuitspec.engine.runner import mix_seed
from circuitspec.engine.sites import all_sites
from circuitspec.stats import bootstrap
from circuitspec.verify.verdict import CircuitMetrics, Estimate, ResampleMetrics


def metric_questions(engine: Engine, per_class: int, seed: int, explains: Sequence[str] = ()) -> torch.Tensor:
    """``per_class`` seeded questions of every class that exists for the model's task
    (of the ``explains`` classes only, when given)."""
    classes = [c for c in engine.task.available_classes() if not explains or c in explains]
    return torch.cat([engine.questions(per_class, seed=seed, cls=c) for c in classes])


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


def resample_source(engine: Engine, questions: torch.Tensor, seed: int) -> torch.Tensor:
    """For each question another question of the same class (a seeded shuffle, then a rotation by
    one inside each class, so no question is its own source unless it is alone in its class)."""
    classes = engine.task.classes(questions).cpu()
    g = torch.Generator().manual_seed(mix_seed("resample-within-class", seed))
    order = torch.arange(len(questions))
    for c in torch.unique(classes).tolist():
        idx = (classes == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        order[idx] = idx.roll(1)
    return questions[order.to(questions.device)]


def _estimate(values: torch.Tensor, seed: int) -> Estimate:
    value, low, high = bootstrap(values, seed=seed)
    return Estimate(value=round(value, 6), low=round(low, 6), high=round(high, 6), n=int(values.numel()), method="bootstrap")


def measure(
    engine: Engine,
    circuit: Sequence[Site],
    node_sites: Mapping[str, Sequence[Site]],
    *,
    questions: torch.Tensor,
    scope: Sequence[bool],
    seed: int,
) -> CircuitMetrics:
    """Faithfulness, completeness and per-node minimality of ``circuit`` on ``questions``."""
    tokens = torch.tensor(scope, dtype=torch.bool)
    clean = engine.clean(questions, recall="questions").correct.cpu()[:, tokens].all(dim=-1)  # the run below reads this pass
    labels = [a for a, inside in zip(engine.answer_labels, scope) if inside]
    if not circuit:
        return CircuitMetrics(clean_accuracy=_estimate(clean.float(), seed), scope=labels)
    outside = complement(circuit, engine)
    node_ids = sorted(node_sites)
    ivs = [Intervention("mean", tuple(outside)), Intervention("mean", tuple(circuit))]
    source = resample_source(engine, questions, seed)
    ivs += [Intervention("interchange", tuple(outside), source=source), Intervention("interchange", tuple(circuit), source=source)]
    ivs += [Intervention("mean", tuple(set(outside) | set(node_sites[n]))) for n in node_ids]
    out = engine.run(questions, ivs)
    correct = out.correct.cpu()[..., tokens].all(dim=-1)  # [I, B]
    faithful = correct[0][clean].float()
    broken = (~correct[1][clean]).float()
    minimality = {
        n: round(float(faithful.mean() - correct[4 + i][clean].float().mean()), 6) for i, n in enumerate(node_ids)
    }
    resample = ResampleMetrics(
        faithfulness=_estimate(correct[2][clean].float(), seed + 3), completeness=_estimate((~correct[3][clean]).float(), seed + 4)
    )
    return CircuitMetrics(
        faithfulness=_estimate(faithful, seed),
        completeness=_estimate(broken, seed + 1),
        resample=resample,
        minimality=minimality,
        scope=labels,
        clean_accuracy=_estimate(clean.float(), seed + 2),
    )
