"""How verdicts look: one palette and one way to print a node's sites, shared by every renderer.

``site_label(['P16.L0.H1', 'P16.L0.H2', 'P17.L1.MLP'])`` gives ``'P16.L0.H1+H2 P17.L1.MLP'``:
heads that share a position and layer are joined with ``+``, as the paper writes them.
"""

from __future__ import annotations

from collections.abc import Iterable

from circuitspec.engine.sites import Site

# Fill colours (graphviz needs #rrggbb). Node statuses first, then the node map's other cells.
STATUS_FILL = {
    "confirmed": "#a8dca0",
    "unconfirmed": "#f7c873",
    "not_placed": "#f2a3a3",
}
USEFUL_FILL = "#cfe2f7"  # useful site (ablating it breaks questions) that no node was assigned to
UNUSED_FILL = "#e3e3e3"  # neither useful nor assigned
HEADER_FILL = "#ffffff"
MISSING_FILL = "#ffffff"  # matrix: node absent from this model's expansion

VERDICT_FILL = {
    "holds": "#a8dca0",
    "fails": "#f2a3a3",
    "inconclusive": "#f7c873",
    "not_applicable": "#e3e3e3",
}
VERDICT_RICH = {
    "holds": "bold green",
    "fails": "bold red",
    "inconclusive": "bold yellow",
    "not_applicable": "dim",
}

# Edge strokes by the edge's path-patching status (a spec drawn without a verdict: the default grey).
EDGE_STROKE = {
    "confirmed": "#2e7d32",
    "unconfirmed": "#e09b12",
    "failed": "#c62828",
    "untested": "#9e9e9e",
}
DEFAULT_EDGE_STROKE = "#555555"

# Outline of the gap report's sites (node map cells, extra boxes on the hypothesis graph), and its legend line.
GAP_STROKE = "#c2185b"
GAP_LEGEND = "outlined: gap report (keep to restore faithfulness)"

# Order of badness, used where several nodes share a cell and when picking a worst node.
STATUS_RANK = {"confirmed": 0, "unconfirmed": 1, "not_placed": 2}

MAX_NEURONS_SHOWN = 4


def _neurons_text(neurons: tuple[int, ...]) -> str:
    if len(neurons) <= MAX_NEURONS_SHOWN:
        return "N[" + ",".join(map(str, neurons)) + "]"
    shown = ",".join(map(str, neurons[:MAX_NEURONS_SHOWN]))
    return f"N[{shown},..+{len(neurons) - MAX_NEURONS_SHOWN}]"


def site_label(sites: Iterable[str | Site], *, sep: str = " ") -> str:
    """Compact, paper-style text for a placement: co-located heads joined with ``+``.

    Order follows the sites' natural order (position, layer, kind, head); neuron sets longer
    than ``MAX_NEURONS_SHOWN`` are abbreviated with a count.
    """
    parsed = sorted(Site.parse(s) for s in sites)
    groups: list[str] = []
    i = 0
    while i < len(parsed):
        s = parsed[i]
        prefix = f"P{s.position}.L{s.layer}."
        if s.kind == "head":
            heads = [s.head]
            j = i + 1
            while j < len(parsed) and parsed[j].kind == "head" and (parsed[j].position, parsed[j].layer) == (s.position, s.layer):
                heads.append(parsed[j].head)
                j += 1
            groups.append(prefix + "+".join(f"H{h}" for h in heads))
            i = j
            continue
        if s.kind == "mlp":
            groups.append(prefix + "MLP")
        elif s.kind == "neurons":
            groups.append(prefix + _neurons_text(s.neurons))
        else:
            groups.append(prefix + "RESID")
        i += 1
    return sep.join(groups)


def fmt_estimate(est, *, digits: int = 2) -> str:
    """``0.97 [0.95, 0.99]`` for an Estimate, ``-`` for None."""
    if est is None:
        return "-"
    return f"{est.value:.{digits}f} [{est.low:.{digits}f}, {est.high:.{digits}f}]"
