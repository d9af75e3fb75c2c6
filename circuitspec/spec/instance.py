"""A concrete hypothesis node and the structural rule of what can feed what.

``NodeInstance`` is what expansion produces and what the matcher, the renderers and the
CLI read; ``site_can_feed`` is the transformer's information-flow rule (see
``circuitspec.spec.expand`` for its statement), the cheap first filter for edges.
"""

from __future__ import annotations

import networkx as nx
from pydantic import BaseModel, ConfigDict

from circuitspec.vocabulary import NodeSiteKind

_STAGE_KINDS = {"head": (0,), "mlp": (1,), "neurons": (1,), "any": (0, 1)}


class NodeInstance(BaseModel):
    """One node of an expanded hypothesis, with every value concrete."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    template: str  # the id as written in the spec, e.g. "SA{n}"
    bindings: dict[str, int]  # the for_each values, e.g. {"n": 3}
    variables: list[tuple[str, int | None]]  # [("SA", 3)], several for a polysemantic node
    site: NodeSiteKind
    max_heads: int
    spread: bool  # every allowed site that fits, patched together; may share sites with other spread nodes
    positions: list[int]  # sorted token positions where it may be
    layers: list[int]  # sorted layers where it may be
    mlp_layers: list[int] | None = None  # site any: its MLPs' layers, when they differ from ``layers``
    attends: list[tuple[list[int], float]]  # (token positions, least total attention share)
    impacts_exactly: list[str] | None  # answer labels ("A3", "sign") its ablation changes, and no others
    impacts_at_least: list[str]  # answer labels its ablation must change
    breaks: list[str]  # question classes that fail when it is ablated
    spares: list[str]  # question classes that still pass when it is ablated
    required: bool
    min_accuracy: float  # interchange test: least share of pairs that change as predicted
    n_pairs: int
    keep: list[tuple[str, int | None]]  # variables held equal between base and source questions
    description: str = ""
    test_answers: list[str] | None = None  # answer labels its test compares (None: every one its sites serve)

    @property
    def variable_text(self) -> str:
        """``SA3 | MD3`` (the paper's SA_3 written flat)."""
        return " | ".join(f"{name}{'' if n is None else n}" for name, n in self.variables)

    def stages(self) -> list[int]:
        """Sub-layer indices where it may run: 2*layer for heads, 2*layer+1 for MLPs and neurons."""
        if self.mlp_layers is not None:
            return sorted({2 * layer for layer in self.layers} | {2 * layer + 1 for layer in self.mlp_layers})
        return sorted({2 * layer + k for layer in self.layers for k in _STAGE_KINDS[self.site]})



def site_can_feed(src: tuple[int, int, str], dst: tuple[int, int, str]) -> bool:
    """Can a site (position, layer, kind) feed another? kind: head / mlp / neurons."""
    (p, l, k), (q, m, j) = src, dst
    if p == q:
        return 2 * l + _STAGE_KINDS[k][0] < 2 * m + _STAGE_KINDS[j][-1]
    return p < q and l < m  # an attention layer in l+1..m moves it from p to q


def can_feed(src: NodeInstance, dst: NodeInstance) -> bool:
    """Is there an allowed placement of ``src`` and ``dst`` with ``src`` feeding ``dst``?"""
    common = set(src.positions) & set(dst.positions)
    if common and min(src.stages()) < max(dst.stages()):
        return True
    return min(src.positions) < max(dst.positions) and min(src.layers) < max(dst.layers)


# ----------------------------------------------------------------------------- expansion


def span_text(values: list[int], prefix: str = "") -> str:
    """[8, 9, 10, 11] -> '8..11'; [0, 2] -> '0,2' (with ``prefix`` before each number)."""
    if not values:
        return "nowhere"
    if values == list(range(values[0], values[-1] + 1)) and len(values) > 1:
        return f"{prefix}{values[0]}..{prefix}{values[-1]}"
    return ",".join(f"{prefix}{v}" for v in values)


def instances(graph: nx.DiGraph) -> list[NodeInstance]:
    """The graph's NodeInstances in expansion order."""
    return [graph.nodes[n]["instance"] for n in graph.nodes]
