"""The gap report in words: what a failing verdict is missing (``verify.gap``), for the terminal and the HTML page.

- ``gap_lines(verdict, top)``: the ``top`` sites of the ranking, each with what it repairs, then
  the smallest set that reaches the faithfulness threshold (or how far it got);
- ``outlined_sites(verdict)``: the sites the node map outlines and the hypothesis graph draws as
  extra outlined boxes (the smallest set, else the top of the ranking; all lie outside the
  circuit, so no node holds them);
- ``ablation_lines(verdicts)``: verdicts whose checks come out differently under resample ablation.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuitspec.render.style import site_label
from circuitspec.verify.verdict import SiteRepair, Verdict

TOP = 3


def site_names(verdict: Verdict) -> dict[str, str] | None:
    """Site -> what it computes (``A(1)``, ``unexplained``), when the verdict carries site labels."""
    if verdict.site_labels is None:
        return None
    return {n.site: ", ".join(n.computes) or "unexplained" for n in verdict.site_labels}


def repair_text(r: SiteRepair, *, most: int = 4, names: dict[str, str] | None = None) -> str:
    """``P15.L0.MLP: +0.10 faithfulness, repairs A5 (215), classes S0 44, S1 44, ...``; with ``names``
    (``site_names``), each site followed by what it computes: ``P15.L0.MLP (computes A(1)): ...``."""
    digits = ", ".join(f"{d} ({k})" for d, k in sorted(r.digits.items(), key=lambda kv: (-kv[1], kv[0]))[:most])
    classes = ", ".join(f"{c} {k}" for c, k in sorted(r.classes.items(), key=lambda kv: (-kv[1], kv[0]))[:most])
    what = [f"{s}: {names[s]}" if len(r.sites) > 1 else names[s] for s in r.sites if s in names] if names else []
    label = site_label(r.sites) + (f" (computes {'; '.join(what)})" if what else "")
    out = f"{label}: {r.restores:+.2f} faithfulness (to {r.faithfulness:.2f}), answer tokens {r.tokens_restored:+.3f}"
    if digits:
        out += f"; repairs {digits}"
    if classes:
        out += f"; classes {classes}"
    return out


def set_text(verdict: Verdict) -> str:
    """One line on the smallest set: its size, its sites and the faithfulness it reaches."""
    gap = verdict.gap
    if gap is None or gap.threshold is None:
        return ""
    if not gap.smallest_set:
        return f"no site outside the circuit restores faithfulness (stays {gap.faithfulness:.2f}, threshold {gap.threshold})"
    sites = ", ".join(site_label(r.sites) for r in gap.smallest_set)
    final = gap.smallest_set[-1].faithfulness
    verb = "reaches" if gap.reached else "gets only to"
    n = len({s for r in gap.smallest_set for s in r.sites})
    return f"smallest set of {n} site(s) {verb} faithfulness {final:.2f} (threshold {gap.threshold}): {sites}"


def gap_lines(verdict: Verdict, top: int = TOP) -> list[str]:
    """The terminal's lines under the verdict table for one verdict (empty without a gap report)."""
    gap = verdict.gap
    if gap is None:
        return []
    head = f"gap {verdict.hypothesis} on {verdict.model} (faithfulness {gap.faithfulness:.2f}, {gap.ablation} ablation):"
    names = site_names(verdict)
    lines = [head] + [f"  {i + 1}. {repair_text(r, names=names)}" for i, r in enumerate(gap.ranking[:top])]
    if not gap.ranking:
        lines.append("  no useful site lies outside the circuit")
    text = set_text(verdict)
    if text:
        lines.append(f"  {text}")
    return lines


def outlined_sites(verdict: Verdict, top: int = TOP) -> list[str]:
    """Sites to outline on the node map and the graph: the smallest set when there is one, else the ranking's top."""
    gap = verdict.gap
    if gap is None:
        return []
    chosen = gap.smallest_set or gap.ranking[:top]
    return list(dict.fromkeys(s for r in chosen for s in r.sites))


def ablation_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """``hypothesis on model: faithfulness passes under mean ablation ... but fails under resample ...``."""
    return [f"{v.hypothesis} on {v.model}: {d}" for v in verdicts for d in v.ablation_disagreement]
