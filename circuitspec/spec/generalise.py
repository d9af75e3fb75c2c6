"""From concrete findings to node templates: the per-column patterns a person would write.

A *finding* is one site of one model and the variables it computes (``SA(3)`` on ``P14.L0.H1``).
Findings that differ only in their digit column (the same variables at the same offset from the
column, at the same kind of position relative to it, on the same kind of site in the same layer)
are one pattern: ``SA(n)`` at ``predicts A(n)``, ``for_each: {n: 0..digits-1}``. A finding can be
read in several ways: a variable that goes by several names (``SV(0)``, the same as ``SC(0)`` and
``ST(0)``) may join the pattern of any of them, any of a site's variables may anchor the column,
and a position has several names (``predicts A(n+1)``, ``D'(n)``, or the fixed ``=``). The largest
patterns are taken first (ties: the reading with the primary names and the simplest position),
and each pattern's columns are split into runs of consecutive columns: a run of two or more is
one templated node, a single column an explicit node.

Plain data, no torch: ``circuitspec.verify.suggest`` makes the findings from labels and
``spec.writer`` writes the result.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from circuitspec.tasks.layout import Layout
from circuitspec.vocabulary import VarKey, key_text

_KEY = re.compile(r"([A-Z]+)(?:\((\d+)\))?")
_FORM_RANK = {"predicts": 0, "D": 1, "D'": 1, "fixed": 2}


def parse_key(text: str) -> VarKey:
    """``SA(3)`` -> ``("SA", 3)``; ``OPR`` -> ``("OPR", None)`` (label and verdict variable texts)."""
    m = _KEY.fullmatch(text)
    if m is None:
        raise ValueError(f"not a variable instance: {text!r}")
    return m[1], None if m[2] is None else int(m[2])


@dataclass(frozen=True)
class Finding:
    """One site and what it computes: per variable, its names (the primary one first)."""

    site: str  # paper notation: P14.L0.H1, P16.L0.H1+H2, P15.L0.MLP
    kind: str  # head | mlp
    heads: int  # heads in the site (1, or the size of a co-located set)
    layer: int
    position: int
    variables: tuple[tuple[VarKey, ...], ...]
    evidence: str = ""  # for the comment: 'SA(3) 1.00 [0.99, 1.00]'
    keep: tuple[VarKey, ...] = ()  # variables its tests held equal (a spec's test.keep)


@dataclass(frozen=True)
class Reading:
    """One way to read a finding as a column pattern (``n`` is None for a fixed reading)."""

    n: int | None
    at: tuple[str, int | str]  # ('predicts', offset) | ('D', offset) | ("D'", offset) | ('fixed', text)
    computes: tuple[tuple[str, int | None], ...]  # (name, offset from n, or the column when n is None)
    cost: int  # alias choices away from the primary names, plus the position form's rank
    keep: tuple[tuple[str, int | None], ...] = ()  # as computes

    @property
    def signature(self) -> tuple:
        return (self.at, self.computes, self.keep)


@dataclass
class Pattern:
    """Findings that share a signature; ``members`` by column."""

    kind: str
    heads: int
    layer: int
    at: tuple[str, int | str]
    computes: tuple[tuple[str, int | None], ...]
    members: dict[int | None, Finding] = field(default_factory=dict)
    keep: tuple[tuple[str, int | None], ...] = ()
    prefix: str = ""

    def runs(self) -> list[list[int | None]]:
        """Columns split into runs of consecutive ones (a fixed pattern is one run of ``None``)."""
        cols = sorted(self.members, key=lambda n: -1 if n is None else n)
        out: list[list[int | None]] = []
        for n in cols:
            if out and n is not None and out[-1][-1] is not None and n == out[-1][-1] + 1:
                out[-1].append(n)
            else:
                out.append([n])
        return out

    def node_id(self, n: int | None) -> str:
        return self.prefix if n is None else f"{self.prefix}{n}"


def offset_text(var: str, k: int) -> str:
    """``n``, ``n+2``, ``n-1``."""
    return var if k == 0 else f"{var}{k:+d}"


def fixed_position(layout: Layout, p: int) -> str:
    """A position by its own name: ``OPR``, ``=``, ``D(2)``, ``D'(0)``, ``predicts A(3)``, else ``P(k)``."""
    d = layout.digits
    if p == layout.opr:
        return "OPR"
    if p == layout.equals:
        return "="
    if p < d:
        return f"D({d - 1 - p})"
    if p <= 2 * d:
        return f"D'({2 * d - p})"
    predicted = {layout.predicts(m): m for m in range(d + 1)}
    return f"predicts A({predicted[p]})" if p in predicted else f"P({p})"


def _positions(layout: Layout, p: int, n: int) -> list[tuple[tuple[str, int | str], int]]:
    """Every name of position ``p`` relative to column ``n``, with its rank."""
    d = layout.digits
    out: list[tuple[tuple[str, int | str], int]] = []
    for m in range(d + 1):
        if layout.predicts(m) == p:
            out.append((("predicts", m - n), _FORM_RANK["predicts"]))
    for m in range(d):
        if layout.d(m) == p:
            out.append((("D", m - n), _FORM_RANK["D"]))
        if layout.d_prime(m) == p:
            out.append((("D'", m - n), _FORM_RANK["D'"]))
    out.append((("fixed", fixed_position(layout, p)), _FORM_RANK["fixed"]))
    return out


def readings(f: Finding, layout: Layout) -> list[Reading]:
    """Every way to read ``f`` (see the module docstring), cheapest first."""
    out: list[Reading] = []
    for choice in itertools.product(*(list(enumerate(names)) for names in f.variables)):
        alias_cost = sum(i for i, _ in choice)
        keys = [k for _, k in choice]
        fixed = tuple(sorted(keys, key=key_text))
        keep = tuple(sorted(f.keep, key=key_text))
        out.append(Reading(None, ("fixed", fixed_position(layout, f.position)), fixed, alias_cost + 3, keep))
        for anchor in sorted({k[1] for k in keys if k[1] is not None}):
            computes = _relative(keys, anchor)
            for at, rank in _positions(layout, f.position, anchor):
                out.append(Reading(anchor, at, computes, alias_cost + rank, _relative(f.keep, anchor)))
    return sorted(out, key=lambda r: (r.cost, repr(r.signature), -1 if r.n is None else r.n))


def _relative(keys: Sequence[VarKey], anchor: int) -> tuple[tuple[str, int | None], ...]:
    return tuple(sorted(((name, None if c is None else c - anchor) for name, c in keys), key=str))


def patterns(findings: Sequence[Finding], layout: Layout) -> list[Pattern]:
    """Group findings into patterns, largest first (see the module docstring); deterministic."""
    left = {f.site: f for f in findings}
    options = {f.site: readings(f, layout) for f in findings}
    out: list[Pattern] = []
    while left:
        groups: dict[tuple, dict[int | None, tuple[Finding, int]]] = {}
        for site in sorted(left):
            f = left[site]
            for r in options[site]:
                key = (f.kind, f.heads, f.layer, r.signature)
                members = groups.setdefault(key, {})
                if r.n not in members and all(g.site != site for g, _ in members.values()):
                    members[r.n] = (f, r.cost)
        best = min(groups.items(), key=lambda kv: (-len(kv[1]), sum(c for _, c in kv[1].values()), repr(kv[0])))
        (kind, heads, layer, (at, computes, keep)), members = best
        pattern = Pattern(kind, heads, layer, at, computes, {n: f for n, (f, _) in members.items()}, keep=keep)
        for f in pattern.members.values():
            del left[f.site]
        out.append(pattern)
    return sorted(out, key=lambda p: _order(p))


def _order(p: Pattern) -> tuple:
    first = min(p.members.values(), key=lambda f: (f.position, f.layer, f.kind, f.site))
    return (p.computes[0][0], p.kind, p.layer, first.position, first.site)


def name_patterns(found: Sequence[Pattern], taken: set[str] = frozenset()) -> None:
    """Give every pattern an id prefix: its variables' names (``SA``, ``SV_SA``), with the site kind
    added where two patterns would share one (``SA_mlp``), then letters; never one in ``taken``
    (ids or prefixes already in use) and never ending in a digit, so ids stay unique."""
    used = set(taken)
    for p in found:
        base = "_".join(dict.fromkeys(name for name, _ in p.computes))
        tag = {"head": "head", "mlp": "mlp"}[p.kind] + ("s" if p.heads > 1 else "")
        choices = [base, f"{base}_{tag}"] + [f"{base}_{tag}_{c}" for c in "bcdefghijklmnopqrstuvwxyz"]
        p.prefix = next(c for c in choices if c not in used and not {c if n is None else f"{c}{n}" for n in p.members} & used)
        used.add(p.prefix)
        used |= {p.node_id(n) for n in p.members}


# ---- patterns as node fields -------------------------------------------------------------------


@dataclass(frozen=True)
class NodeDraft:
    """A node as the writer writes it: the spec's fields, plus the evidence for its comment."""

    id: str
    computes: str
    site: str
    at: str
    layers: int
    for_each: str | None = None  # the range of n, e.g. '0..digits-1'
    max_heads: int = 1
    evidence: tuple[str, ...] = ()
    members: tuple[tuple[str, str], ...] = ()  # (expanded id, site) per column
    keep: tuple[str, ...] = ()  # test.keep: 'SC(n-1)'

    def data(self) -> dict:
        """The node as spec data (what ``Hypothesis.build`` takes)."""
        out: dict = {"id": self.id}
        if self.for_each is not None:
            out["for_each"] = {"n": self.for_each}
        out.update(computes=self.computes, site=self.site, at=self.at, layers=self.layers)
        if self.max_heads > 1:
            out["max_heads"] = self.max_heads
        if self.keep:
            out["test"] = {"keep": list(self.keep)}
        return out


def range_text(lo: int, hi: int, digits: int) -> str:
    """``0..digits-1``: the top of a range written against ``digits`` where it is the last column."""
    top = {digits: "digits", digits - 1: "digits-1"}.get(hi, str(hi))
    return f"{lo}..{top}"


def _at_text(at: tuple[str, int | str]) -> str:
    form, value = at
    if form == "fixed":
        return str(value)
    ref = offset_text("n", int(value))
    return f"predicts A({ref})" if form == "predicts" else f"{form}({ref})"


def _computes_text(computes, n: int | None) -> str:
    """Relative to ``n`` when it is a name, absolute when it is a column number."""
    parts = []
    for name, c in computes:
        if c is None:
            parts.append(name)
        elif isinstance(n, str):
            parts.append(f"{name}({offset_text(n, c)})")
        else:
            parts.append(key_text((name, c + (n or 0))))
    return " | ".join(parts)


def drafts(p: Pattern, layout: Layout) -> list[NodeDraft]:
    """The pattern's nodes: one templated node per run of two or more columns, else explicit nodes."""
    site = "head" if p.kind == "head" else "mlp"
    out = []
    for run in p.runs():
        members = tuple((p.node_id(n), p.members[n].site) for n in run)
        evidence = tuple(f"{p.members[n].site}: {p.members[n].evidence}" for n in run)
        common = dict(site=site, layers=p.layer, max_heads=p.heads, evidence=evidence, members=members)
        if len(run) > 1:
            keep = tuple(_computes_text(((name, c),), "n") for name, c in p.keep)
            out.append(NodeDraft(id=f"{p.prefix}{{n}}", computes=_computes_text(p.computes, "n"), at=_at_text(p.at),
                                 for_each=range_text(run[0], run[-1], layout.digits), keep=keep, **common))
            continue
        n = run[0]
        f = p.members[n]
        at = fixed_position(layout, f.position)
        keep = tuple(_computes_text(((name, c),), n) for name, c in p.keep)
        out.append(NodeDraft(id=p.node_id(n), computes=_computes_text(p.computes, n), at=at, keep=keep, **common))
    return out
