"""The model's measured accuracy on the classes a hypothesis explains, next to its verdict.

A circuit verdict is about a model that answers the questions; when the model gets a
whole family of those questions wrong (``000500+000500``, a carry followed by sum-9
columns at one place ...), the verdict should say so. Figures come from the model's
card (``circuitspec zoo eval``): per-class accuracy on class-stratified questions, and
each hard-question family's failures split by class, so only the failures on classes
the hypothesis explains count.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuitspec.stats import wilson
from circuitspec.verify.verdict import Estimate, ExplainedAccuracy


def explained_accuracy(card, explains: Sequence[str], hypothesis: str) -> ExplainedAccuracy | None:
    """Accuracy on the ``explains`` classes (all when empty) and the families failed on them; None if the card has no results."""
    results = card.results
    if results is None or not results.per_class:
        return None
    classes = [c for c in results.per_class if not explains or c in explains]
    questions = sum(results.per_class[c].questions for c in classes)
    failures = sum(results.per_class[c].failures for c in classes)
    value, low, high = wilson(questions - failures, questions)
    failed = {}
    for name, family in results.families.items():
        count = sum(family.failed_classes.get(c, 0) for c in classes)
        if count:
            failed[name] = count
    warning = ""
    if failed:
        listed = ", ".join(f"{n} ({k} of {results.families[n].questions:,})" for n, k in failed.items())
        warning = (
            f"{card.name} is {100 * value:.2f}% right on the classes {hypothesis} explains ({', '.join(classes)}) "
            f"and fails question families there: {listed}"
        )
    return ExplainedAccuracy(
        classes=classes,
        questions=questions,
        accuracy=Estimate(value=value, low=low, high=high, n=questions, method="wilson"),
        families_measured=sorted(results.families),
        families_failed=failed,
        warning=warning,
    )


def accuracy_warnings(verdicts) -> list[str]:
    """One line per model whose verdicts carry a family warning (a model's warning repeats across hypotheses)."""
    lines: dict[str, str] = {}
    for v in verdicts:
        acc = v.model_accuracy
        if acc is not None and acc.warning:
            lines.setdefault(f"{v.model}:{v.hypothesis}", f"{v.hypothesis} on {v.model}: {v.status}, but {acc.warning}")
    return list(lines.values())
