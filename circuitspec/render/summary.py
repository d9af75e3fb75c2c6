"""Short facts about one verdict that every view prints: nodes placed, the worst node, failures.

Definitions (shared by the terminal table, JUnit XML and the HTML report):

- *placed*: a node that has a placement (status ``confirmed`` or ``unconfirmed``);
  the table shows placed required nodes / required nodes.
- *worst node*: among required nodes and placed optional ones, the one with the worst status
  (not placed < unconfirmed < confirmed), ties broken by the lowest interchange accuracy of its
  variable tests, then by node id. Optional nodes that were not placed are not problems.
- *failing nodes*: required nodes that are not confirmed, with the reason in words.
- *edges*: confirmed required edges / required edges (path-patching tests, ``match.edges``);
  *failing edges*: required edges that are not confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.render.style import STATUS_RANK, fmt_estimate, site_label
from circuitspec.verify.verdict import EdgeVerdict, NodeVerdict, Verdict

_REASON_TEXT = {
    "no_candidate": "no site satisfied its constraints",
    "failed_causal_test": "its candidates failed the causal test",
    "edge_conflict": "no placement respects the edges",
}


@dataclass(frozen=True)
class Counts:
    required: int
    placed_required: int
    confirmed_required: int
    total: int
    placed: int

    @property
    def text(self) -> str:
        """``'5/6'`` (placed required / required), plus unconfirmed ones when there are any."""
        out = f"{self.placed_required}/{self.required}"
        unconfirmed = self.placed_required - self.confirmed_required
        if unconfirmed:
            out += f" ({unconfirmed} unconfirmed)"
        return out


def counts(verdict: Verdict) -> Counts:
    req = [n for n in verdict.nodes if n.required]
    return Counts(
        required=len(req),
        placed_required=sum(n.status != "not_placed" for n in req),
        confirmed_required=sum(n.status == "confirmed" for n in req),
        total=len(verdict.nodes),
        placed=sum(n.status != "not_placed" for n in verdict.nodes),
    )


def edge_counts(verdict: Verdict) -> str:
    """``'9/10'``: confirmed required edges / required edges (``-`` without edge tests)."""
    req = [e for e in verdict.edge_results if e.required]
    if not verdict.edge_results:
        return "-"
    return f"{sum(e.status == 'confirmed' for e in req)}/{len(req)}"


def edge_text(edge: EdgeVerdict) -> str:
    """One line about an edge: ``SA3 -> A3 confirmed, acc 0.98 [0.96, 0.99] on 212 pairs``."""
    out = f"{edge.source} -> {edge.target} {edge.status}" + ("" if edge.required else " (optional)")
    if edge.accuracy is not None:
        out += f", acc {fmt_estimate(edge.accuracy)} on {edge.pairs} pairs"
    if edge.status != "confirmed" and edge.detail:
        out += f" ({edge.detail})"
    return out


def failing_edges(verdict: Verdict) -> list[EdgeVerdict]:
    """Required edges that are not confirmed, in verdict order."""
    return [e for e in verdict.edge_results if e.required and e.status != "confirmed"]


def min_accuracy(node: NodeVerdict) -> float | None:
    """Lowest interchange accuracy over the node's variable tests (None without tests)."""
    return min((t.accuracy.value for t in node.tests), default=None)


def reason_text(node: NodeVerdict) -> str:
    """Why a node is not confirmed, in words ('' for a confirmed node)."""
    if node.status == "confirmed":
        return ""
    if node.detail:
        return node.detail
    if node.status == "not_placed":
        return _REASON_TEXT.get(node.reason or "", "not placed")
    acc = min_accuracy(node)
    return "causal test below threshold" + (f" (accuracy {acc:.2f})" if acc is not None else "")


def worst_node(verdict: Verdict) -> NodeVerdict | None:
    pool = [n for n in verdict.nodes if n.required or n.status != "not_placed"]
    if not pool:
        return None

    def key(n: NodeVerdict):
        acc = min_accuracy(n)
        return (-STATUS_RANK[n.status], 2.0 if acc is None else acc, n.node)

    return min(pool, key=key)


def node_text(node: NodeVerdict) -> str:
    """One line about a node: ``SA3 confirmed at P16.L0.H1+H2, acc 0.98 [0.96, 0.99]``."""
    if node.status == "not_placed":
        why = _REASON_TEXT.get(node.reason or "", "")
        return f"{node.node} not placed" + (f": {why}" if why else "") + (f" ({node.detail})" if node.detail else "")
    out = f"{node.node} {node.status} at {site_label(node.sites)}"
    worst = min(node.tests, key=lambda t: t.accuracy.value, default=None)
    if worst is not None:
        out += f", {worst.variable} acc {fmt_estimate(worst.accuracy)}"
    if node.status != "confirmed" and node.detail:
        out += f" ({node.detail})"
    return out


def worst_text(verdict: Verdict) -> str:
    node = worst_node(verdict)
    if node is None:
        return "-"
    if node.status == "not_placed":
        return f"{node.node}: not placed ({(node.reason or 'unknown').replace('_', ' ')})"
    acc = min_accuracy(node)
    acc_text = f" acc {acc:.2f}" if acc is not None else ""
    return f"{node.node}: {node.status}{acc_text}"


def failing_nodes(verdict: Verdict) -> list[NodeVerdict]:
    """Required nodes that are not confirmed, in verdict order."""
    return [n for n in verdict.nodes if n.required and n.status != "confirmed"]


def passed(verdict: Verdict) -> bool | None:
    """True if it holds, False if it fails or is inconclusive, None if not applicable."""
    if verdict.status == "not_applicable":
        return None
    return verdict.status == "holds"
