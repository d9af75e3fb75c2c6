"""Train the plug-in task's model: ``python examples/train_reverse.py`` (about a minute on one core).

The recipe is circuitspec's own trainer (``models.train``) with a card that names the plug-in
task by import path; the card and weights land in ``examples/models/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from circuitspec.models import Architecture, ModelCard, Recipe, TaskSpec, measure, save, train

HERE = Path(__file__).resolve().parent
DIGITS, STEPS, SEED = 6, 3000, 1
NAME = f"reverse_d{DIGITS}_l1_h2_t{STEPS // 1000}K_s{SEED}"


def card() -> ModelCard:
    from examples.reverse_task import REF, ReverseTask

    task = ReverseTask(DIGITS)
    return ModelCard(
        name=NAME,
        architecture=Architecture(n_layers=1, n_heads=2, d_model=64, d_head=16, d_mlp=256, n_ctx=task.n_ctx, d_vocab=task.d_vocab),
        task=TaskSpec(op=REF, digits=DIGITS),
        recipe=Recipe(steps=STEPS, lr=1e-3, seed=SEED, command="python examples/train_reverse.py", torch_version=torch.__version__),
        notes="the plug-in task of examples/reverse_task.py",
    )


def main() -> None:
    trained = train(card())
    results = measure(trained.model, questions=100_000, per_class=1000, family_size=0, final_loss=sum(trained.losses[-100:]) / 100)
    model = trained.model
    model.card = model.card.model_copy(update={"results": results})
    print(save(model, HERE / "models", overwrite=True), f"{trained.seconds:.0f} s,", results.uniform.failures, "failures in", results.uniform.questions)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
