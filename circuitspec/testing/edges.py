"""Ground truth for edge tests: planted hypotheses with true and false edges.

Every edge of ``hypothesis_yaml(planted)`` is true: the planted weights route each value
exactly so. The variants here add what an edge test must tell apart:

- ``unnamed_mover`` (true edges): the carry movers C{n} are left out of the hypothesis, so
  ``SV{n-1} -> A{n}`` runs through an unnamed last-layer head that moves the carry from the
  carry position V to the token predicting A(n), as the paper's ST reaches the answer;
- ``st_to_answer`` (false): ``ST{n-1} -> A{n}``, a route by attention from V to A(n)'s token
  that the model does not use (ST reaches A(n) only through the frozen SV{n-1} and C{n});
- ``st_to_mover`` (false): ``ST{n-1} -> C{n}``: the mover reads V's carry, never the ST heads;
- ``skip_cascade`` (false): ``ST{n-1} -> SV{n}``: SV{n}'s neurons read ST{n} and SV{n-1},
  never ST{n-1} itself (the two nodes share a token, but one never reads the other).

With ``route="answer"`` every edge claims the answer route instead (through the target or
around it): the truth is the same, since a false edge's only route runs through other nodes.
``edge_truth(planted, kind)`` says which edges of the variant are true;
``edge_recovery(planted, verdict, kind)`` counts true edges confirmed and false ones accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.testing.planted import Planted, PlantError
from circuitspec.testing.recovery import hypothesis_yaml

TRUE_KINDS = ("unnamed_mover",)
FALSE_KINDS = ("st_to_answer", "st_to_mover", "skip_cascade")
EDGE_KINDS = (None, *TRUE_KINDS, *FALSE_KINDS)

_FALSE_FLOW = {
    "st_to_answer": ("ST{n-1} -> A{n}", "1..digits"),
    "st_to_mover": ("ST{n-1} -> C{n}", "1..digits"),
    "skip_cascade": ("ST{n-1} -> SV{n}", "1..digits-1"),
}


def _planted_edges(n: int, mover: bool) -> list[tuple[str, str]]:
    out = [(f"ST{j}", f"SV{j}") for j in range(n)] + [(f"SV{j - 1}", f"SV{j}") for j in range(1, n)]
    if mover:
        out += [(f"SV{k - 1}", f"C{k}") for k in range(1, n + 1)] + [(f"C{k}", f"A{k}") for k in range(1, n + 1)]
    else:
        out += [(f"SV{k - 1}", f"A{k}") for k in range(1, n + 1)]
    return out + [(f"SA{k}", f"A{k}") for k in range(n)]


def edge_truth(planted: Planted, kind: str | None = None) -> dict[tuple[str, str], bool]:
    """Every edge of ``edge_hypothesis_yaml(planted, kind)`` with whether the planted model has it."""
    n = planted.params.digits
    truth = {e: True for e in _planted_edges(n, kind != "unnamed_mover")}
    if kind in _FALSE_FLOW:
        top = n if _FALSE_FLOW[kind][1] == "1..digits" else n - 1
        target = {"st_to_answer": "A", "st_to_mover": "C", "skip_cascade": "SV"}[kind]
        truth.update({(f"ST{k - 1}", f"{target}{k}"): False for k in range(1, top + 1)})
    return truth


def edge_hypothesis_yaml(planted: Planted, kind: str | None = None, route: str = "target") -> str:
    """The planted hypothesis with the edges of ``kind`` (see the module docstring), every edge
    claimed by ``route`` (``answer``: through the target or around it)."""
    if kind not in EDGE_KINDS:
        from circuitspec.errors import unknown

        raise unknown("edge variant", str(kind), [k for k in EDGE_KINDS if k], PlantError)
    text = _variant(planted, kind)
    return text if route == "target" else text.replace("  - flow: ", f"  - route: {route}\n    flow: ")


def _variant(planted: Planted, kind: str | None) -> str:
    text = hypothesis_yaml(planted)
    if kind is None:
        return text
    head, edges = text.split("edges:\n", 1)
    if kind == "unnamed_mover":
        start, end = head.index("  - id: C{n}"), head.index("  - id: A{n}")
        head = head[:start] + head[end:]
        edges = edges.replace("  - flow: SV{n-1} -> C{n}\n", "  - flow: SV{n-1} -> A{n}\n")
        edges = edges.replace("  - flow: C{n} -> A{n}\n    for_each: {n: 1..digits}\n", "")
        head = head.replace("name: planted-", "name: planted-unnamed-mover-", 1)
        return head + "edges:\n" + edges
    flow, span = _FALSE_FLOW[kind]
    head = head.replace("name: planted-", f"name: planted-{kind.replace('_', '-')}-", 1)
    return head + "edges:\n" + edges + f"  - flow: {flow}\n    for_each: {{n: {span}}}\n"


@dataclass(frozen=True)
class EdgeRecovery:
    """How a verdict judged a variant's edges: true ones confirmed, false ones accepted."""

    true_edges: int
    true_confirmed: int
    false_edges: int
    false_accepted: int
    missed: tuple[str, ...]  # true edges not confirmed, with their status
    accepted: tuple[str, ...]  # false edges confirmed


def edge_recovery(planted: Planted, verdict, kind: str | None = None) -> EdgeRecovery:
    """Count, over the variant's edges, the true ones the verdict confirmed and the false ones it confirmed."""
    truth = edge_truth(planted, kind)
    status = {(e.source, e.target): e.status for e in verdict.edge_results}
    missed = tuple(f"{a}->{b}: {status.get((a, b), 'missing')}" for (a, b), t in truth.items() if t and status.get((a, b)) != "confirmed")
    accepted = tuple(f"{a}->{b}" for (a, b), t in truth.items() if not t and status.get((a, b)) == "confirmed")
    n_true = sum(truth.values())
    return EdgeRecovery(n_true, n_true - len(missed), len(truth) - n_true, len(accepted), missed, accepted)
