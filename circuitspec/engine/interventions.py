"""Interventions: what to do to a set of sites during a forward pass.

- ``zero``: replace the sites' activations with zeros.
- ``mean``: replace them with their mean over the engine's reference questions
  (per layer, per position, per head / neuron), a set disjoint from the evaluated ones.
- ``resample``: replace them, row by row, with their activations on a random
  reference question (drawn from a generator seeded by the engine seed and ``seed``).
- ``interchange``: replace them, row by row, with their activations on ``source``
  (``LongTensor[B, n_ctx]``, the counterfactual questions aligned with the evaluated ones).

An intervention with no sites is the clean model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from circuitspec.engine.sites import Site, check_sites
from circuitspec.errors import EngineError, unknown

KINDS = ("zero", "mean", "resample", "interchange")


@dataclass(frozen=True, eq=False)
class Intervention:
    kind: str
    sites: tuple[Site, ...]
    source: Any = None  # torch.LongTensor[B, n_ctx] for interchange
    seed: int = 0  # resample draws
    label: str = field(default="")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise unknown("intervention kind", self.kind, KINDS, EngineError)
        sites = self.sites
        if isinstance(sites, (Site, str)):
            sites = (sites,)
        parsed = tuple(s if isinstance(s, Site) else Site.parse(s) for s in sites)
        object.__setattr__(self, "sites", tuple(sorted(set(parsed))))
        if self.kind == "interchange":
            if self.source is None:
                raise EngineError(
                    "an interchange intervention needs source tokens",
                    hint="Intervention('interchange', sites, source=counterfactual_tokens)",
                )
            if getattr(self.source, "ndim", None) != 2:
                raise EngineError(f"interchange source must be a [B, n_ctx] token tensor, got {type(self.source).__name__}")
        elif self.source is not None:
            raise EngineError(f"a {self.kind} intervention takes no source tokens (only interchange does)")

    def __str__(self) -> str:
        sites = ", ".join(str(s) for s in self.sites[:4]) + (f", ... ({len(self.sites)} sites)" if len(self.sites) > 4 else "")
        return f"{self.label or self.kind}({sites})"

    def checked(self, shape: Any) -> "Intervention":
        check_sites(self.sites, shape)
        return self


def zero(sites: Iterable[Site | str] | Site | str) -> Intervention:
    return Intervention("zero", _tuple(sites))


def mean(sites: Iterable[Site | str] | Site | str) -> Intervention:
    return Intervention("mean", _tuple(sites))


def resample(sites: Iterable[Site | str] | Site | str, seed: int = 0) -> Intervention:
    return Intervention("resample", _tuple(sites), seed=seed)


def interchange(sites: Iterable[Site | str] | Site | str, source) -> Intervention:
    return Intervention("interchange", _tuple(sites), source=source)


def _tuple(sites) -> tuple:
    if isinstance(sites, (Site, str)):
        return (sites,)
    return tuple(sites)
