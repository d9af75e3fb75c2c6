"""A placement: one way to put a hypothesis node on sites, with the causal evidence for it.

The matcher scores placements by interchange tests, the solver picks one passing placement per
node, and the verdict reports the chosen one and the runner-up. One name for one idea.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.engine import Site
from circuitspec.match import causal

MIN_INFORMATIVE = 20  # fewer informative pairs than this cannot confirm a node


@dataclass(frozen=True)
class Placement:
    """A placement of a node: the sites it is put on, with an interchange score per variable it computes."""

    sites: tuple[Site, ...]
    scores: tuple[causal.Score, ...]
    min_accuracy: float
    shareable: bool = False  # a spread node's placement: its sites may also serve other spread nodes

    @property
    def value(self) -> float:
        """The weakest variable's accuracy: every variable must hold."""
        return min((s.accuracy[0] for s in self.scores), default=0.0)

    @property
    def gain(self) -> float:
        """The weakest variable's log-prob gain towards the predicted answers."""
        return min((s.gain for s in self.scores), default=0.0)

    @property
    def score(self) -> float:
        """What the assignment solver maximises (the weakest accuracy, rounded so ties are exact)."""
        return round(self.value, 9)

    @property
    def passed(self) -> bool:
        return all(s.informative >= MIN_INFORMATIVE and s.accuracy[0] >= self.min_accuracy for s in self.scores)

    @property
    def plausible(self) -> bool:
        """Not passed, but the intervals cannot rule it out (too few pairs or a borderline score).

        A placement that no pair informs about (the variable never changes an answer
        token it serves) is ruled out when pairs were drawn: it does not carry the variable.
        """
        return not self.passed and all(
            s.accuracy[2] >= self.min_accuracy and (s.informative > 0 or s.drawn == 0) for s in self.scores
        )
