"""The causal model's DAG as data: which variable instances feed which (see ``tasks.causal``).

Labelling needs it twice: a site that passes the interchange test of a variable usually
passes the tests of that variable's ancestors too (an MLP that computes A(3) carries
SA(3) and SV(2) as well), so a label names the most downstream variable that holds and
lists its ancestors as implied; and a variable with two kinds of parent (A(n): the base
digit SA(n) and the carry SV(n-1)) is tested through each, so a site that reads only one
route cannot pass.

>>> sorted(parents(("A", 2), "add", 3))
[('SA', 2), ('SV', 1)]
>>> ("ST", 0) in ancestors(("SV", 1), "add", 3)
True
"""

from __future__ import annotations

from functools import lru_cache

from circuitspec.vocabulary import VarKey

_TRICASE = {"ST": ("SC", "SS"), "MT": ("MB", "MZ"), "NT": ("NB", "NZ")}
_CASCADE = {"SV": "ST", "MV": "MT", "NV": "NT"}


def parents(key: VarKey, op: str, digits: int) -> tuple[VarKey, ...]:
    """The variable instances ``key`` is computed from in one step (digits are not variables)."""
    name, n = key
    if name in _TRICASE:
        return tuple((p, n) for p in _TRICASE[name])
    if name in _CASCADE:
        return ((_CASCADE[name], n),) + (((name, n - 1),) if n else ())
    if name == "SGN":
        return tuple((p, m) for m in range(digits) for p in ("MZ", "GT"))
    if name != "A":
        return ()
    out: list[VarKey] = []
    if op in ("add", "mix"):
        out += [("SA", n)] if n < digits else []
        out += [("SV", n - 1)] if n else []
    if op in ("sub", "mix"):
        out += [("MD", n), ("ND", n)] if n < digits else []
        out += [("MV", n - 1), ("NV", n - 1)] if n else []
        out.append(("SGN", None))
    if op == "mix":
        out.append(("OPR", None))
    return tuple(out)


@lru_cache(maxsize=4096)
def ancestors(key: VarKey, op: str, digits: int) -> frozenset[VarKey]:
    """Every variable instance ``key`` depends on, directly or through others."""
    out: set[VarKey] = set()
    for p in parents(key, op, digits):
        out.add(p)
        out |= ancestors(p, op, digits)
    return frozenset(out)


# ---- edges: which variables an edge may join, and the ties its change must pass through ----------

# Per family: the TriCase that passes a carry on when its column is a tie, and the cascade.
GATES = {"S": "ST", "M": "MT", "N": "NT"}
_FAMILY_CASCADE = {"S": "SV", "M": "MV", "N": "NV"}
_FAMILY_NAMES = {"S": "SA SC SS ST SV", "M": "MD MB MZ MT MV", "N": "ND NB NZ NT NV"}


def reaches(source: VarKey, target: VarKey, op: str, digits: int) -> bool:
    """Whether changing ``source`` can change ``target`` in the causal model (a variable reaches
    itself: a node that reads a copy of it). What a hypothesis edge must claim at least."""
    return source == target or source in ancestors(target, op, digits)


def tie_columns(source: VarKey, target: VarKey) -> list[int]:
    """Columns that must be ties for a change of ``source`` to reach ``target`` through a cascade.

    ``source`` at column k feeds its family's cascade at column k; the cascade out of column n
    (``SV(n)``), or answer digit ``A(n + 1)`` that reads it, sees that change only through the
    columns k+1 .. n, each of which must be a tie.

    >>> tie_columns(("ST", 1), ("SV", 3)), tie_columns(("SC", 0), ("A", 2)), tie_columns(("SA", 2), ("A", 2))
    ([2, 3], [1], [])
    """
    family = next((f for f, names in _FAMILY_NAMES.items() if source[0] in names.split()), None)
    k, name, n = source[1], target[0], target[1]
    if family is None or k is None or n is None or name not in (_FAMILY_CASCADE[family], "A"):
        return []
    top = n if name == _FAMILY_CASCADE[family] else n - 1
    return list(range(k + 1, top + 1))
