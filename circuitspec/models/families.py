"""A model's accuracy on the hard-question families (``circuitspec.tasks.families``).

Each family is answered teacher-forced like the uniform questions; the card keeps the
count, the failures with a Clopper-Pearson interval, how the failures spread over
question classes (so a verdict can say whether a hypothesis' classes are affected)
and a few failed questions in the paper's notation with the model's answer.
"""

from __future__ import annotations

import torch

from circuitspec.models.card import FamilyResult
from circuitspec.models.evaluate import Progress, answer_logits, default_chunk, per_million_interval
from circuitspec.tasks.families import DEFAULT_SEED, DEFAULT_SIZE, Family, families

EXAMPLES = 3  # failed questions kept per family


def family_tokens(task, family: Family) -> torch.Tensor:
    """Token batch (gold answers filled in) of a family's questions under ``task``."""
    x = torch.tensor([r[0] for r in family.rows], dtype=torch.long)
    y = torch.tensor([r[1] for r in family.rows], dtype=torch.long)
    opr = torch.full((len(family),), int(family.op == "sub"), dtype=torch.long)
    return task.assemble(x, y, opr)


@torch.no_grad()
def predictions(model, tokens: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Teacher-forced argmax answer tokens [B, n_answer]."""
    n_answer = model.task.n_answer
    device = next(model.bridge.parameters()).device
    chunk = chunk or default_chunk(device)
    out = [answer_logits(model.bridge, tokens[s : s + chunk].to(device), n_answer).argmax(-1).cpu() for s in range(0, len(tokens), chunk)]
    return torch.cat(out) if out else torch.zeros(0, n_answer, dtype=torch.long)


def answered(model, tokens: torch.Tensor, predicted: torch.Tensor) -> list[str]:
    """``question=gold (model: answer)`` lines in the paper's notation."""
    task = model.task
    return [f"{t} (model: {task.decode(p[None])[0]})" for t, p in zip(task.decode(tokens), predicted)]


def family_failures(
    model, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, *, chunk: int | None = None, progress: Progress | None = None
) -> dict[str, FamilyResult]:
    """Every family of the model's task: questions, failures, interval, failed classes, examples."""
    task = model.task
    was_training = model.bridge.training
    model.bridge.eval()
    out: dict[str, FamilyResult] = {}
    built = families(model.card.task.op, model.card.task.digits, size=size, seed=seed)
    try:
        for i, family in enumerate(built):
            tokens = family_tokens(task, family)
            predicted = predictions(model, tokens, chunk)
            wrong = (predicted != tokens[:, -task.n_answer :]).any(-1)
            bad = tokens[wrong]
            names = task.class_names
            counts: dict[str, int] = {}
            for c in task.classes(bad).tolist() if len(bad) else []:
                counts[names[c]] = counts.get(names[c], 0) + 1
            fails = int(wrong.sum())
            out[family.name] = FamilyResult(
                op=family.op, questions=len(family), failures=fails, interval=per_million_interval(fails, len(family)),
                exhaustive=family.exhaustive, seed=seed, size=size, failed_classes=dict(sorted(counts.items())),
                examples=answered(model, bad[:EXAMPLES], predicted[wrong][:EXAMPLES]),
            )
            if progress:
                progress(i + 1, len(built))
    finally:
        model.bridge.train(was_training)
    return out
