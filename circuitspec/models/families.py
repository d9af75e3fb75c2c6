"""A model's accuracy on the hard-question families (``circuitspec.tasks.families``).

Each family is answered teacher-forced like the uniform questions; the card keeps the
count, the failures with a Clopper-Pearson interval, how the failures spread over
question classes (so a verdict can say whether a hypothesis' classes are affected)
and a few failed questions in the paper's notation with the model's answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuitspec.models.card import FamilyResult
from circuitspec.models.evaluate import Predict, Progress, answer_all, in_process, per_million_interval
from circuitspec.tasks.families import DEFAULT_SEED, DEFAULT_SIZE, Family, families

EXAMPLES = 3  # failed questions kept per family


def family_tokens(task, family: Family) -> torch.Tensor:
    """Token batch (gold answers filled in) of a family's questions under ``task``."""
    x = torch.tensor([r[0] for r in family.rows], dtype=torch.long)
    y = torch.tensor([r[1] for r in family.rows], dtype=torch.long)
    opr = torch.full((len(family),), int(family.op == "sub"), dtype=torch.long)
    return task.assemble(x, y, opr)


def answered(model, tokens: torch.Tensor, predicted: torch.Tensor) -> list[str]:
    """``question=gold (model: answer)`` lines in the paper's notation."""
    task = model.task
    return [f"{t} (model: {task.decode(p[None])[0]})" for t, p in zip(task.decode(tokens), predicted)]


def family_batches(model, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[tuple[Family, torch.Tensor]]:
    """Every family of the model's task with its token batch."""
    built = families(model.card.task.op, model.card.task.digits, size=size, seed=seed)
    return [(family, family_tokens(model.task, family)) for family in built]


def family_results(
    model, batches: Sequence[tuple[Family, torch.Tensor]], predicted: Sequence[torch.Tensor], size: int, seed: int
) -> dict[str, FamilyResult]:
    """Questions, failures, interval, failed classes and examples of each family, from its predictions."""
    task = model.task
    names = task.class_names
    out: dict[str, FamilyResult] = {}
    for (family, tokens), pred in zip(batches, predicted):
        pred = pred.long()
        wrong = (pred != tokens[:, -task.n_answer :]).any(-1)
        bad = tokens[wrong]
        counts: dict[str, int] = {}
        for c in task.classes(bad).tolist() if len(bad) else []:
            counts[names[c]] = counts.get(names[c], 0) + 1
        fails = int(wrong.sum())
        out[family.name] = FamilyResult(
            op=family.op, questions=len(family), failures=fails, interval=per_million_interval(fails, len(family)),
            exhaustive=family.exhaustive, seed=seed, size=size, failed_classes=dict(sorted(counts.items())),
            examples=answered(model, bad[:EXAMPLES], pred[wrong][:EXAMPLES]),
        )
    return out


def family_failures(
    model, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, *, chunk: int | None = None,
    progress: Progress | None = None, predict: Predict | None = None,
) -> dict[str, FamilyResult]:
    """Every family of the model's task: questions, failures, interval, failed classes, examples."""
    batches = family_batches(model, size, seed)
    was_training = model.bridge.training
    model.bridge.eval()
    try:
        predicted = answer_all(predict or in_process(model, chunk), [t for _, t in batches], progress)
    finally:
        model.bridge.train(was_training)
    return family_results(model, batches, predicted, size, seed)
