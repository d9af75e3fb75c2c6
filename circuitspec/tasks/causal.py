"""The high-level causal model of the paper's algorithms, over a batch.

One topological pass computes every sub-task variable from the digits, letting any
variable instance be forced to a given value, so downstream variables and answer
digits follow the override (ST_3 := carry changes SV_3, hence SV above and A_4..).
With no override it is simply how the task computes variables and gold answers.

The DAG (per column n; B = batch):
  digits -> SA SC SS | MD MB MZ | ND NB NZ | GT
  ST = carry if SC else uncertain if SS else none   (MT from MB/MZ, NT from NB/NZ)
  SV_n = TriAdd(ST_n, SV_(n-1)), SV_0 from ST_0 with 'uncertain' read as no carry
  SGN  = '-' iff the highest column with MZ = 0 has GT = 0
  A_n  = add: (SA_n + SV_(n-1)) mod 10, top digit SV_(digits-1)
         sub, SGN '+': (MD_n - MV_(n-1)) mod 10;  SGN '-': (ND_n - NV_(n-1)) mod 10; top digit 0
  The operator (OPR) picks the branch, so overriding a variable of the other
  operation's algorithm leaves the answer unchanged.

Path-specific overrides (``seen_by``): a variable changed only as an input of some
downstream variables (ST_3 as seen by SV_4 alone). Their values are computed with the
change, every other variable keeps its base value, and the answer follows from them
alone: the exact prediction of a hypothesis edge test. ``tasks.dag`` is the same DAG
as structure (which variable reads which), for checks that must not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from circuitspec.tasks.layout import MINUS, PLUS
from circuitspec.vocabulary import CARRY, UNCERTAIN
SMALL = torch.int8  # every variable fits; the public API widens to int64 at the edges

# Each cascaded variable and the TriCase it folds: XV(n) is XT(n)'s carry unless XT(n) is
# uncertain (a tie column), where it passes XV(n-1) on.
CASCADES = {"SV": "ST", "MV": "MT", "NV": "NT"}

# A resolved override: (name, column or None) -> value LongTensor[B].
Overrides = Mapping[tuple[str, int | None], torch.Tensor]


def tricase(carry: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
    """0 none / 1 uncertain / 2 carry, the carry flag winning over the tie flag."""
    return torch.where(carry == 1, CARRY, tie * UNCERTAIN).to(SMALL)


def seen_by(
    x: torch.Tensor, y: torch.Tensor, opr: torch.Tensor, sender: tuple[str, int | None], value: torch.Tensor,
    receivers: list[tuple[str, int | None]],
) -> dict[tuple[str, int | None], torch.Tensor]:
    """The overrides that change ``sender`` to ``value`` as seen by ``receivers`` alone.

    Each receiver takes the value it has when ``sender`` is forced (everything between
    follows); passed to ``evaluate``, they change the receivers' descendants and nothing
    else, so no other route from the sender to the answer is taken.
    """
    changed = evaluate(x, y, opr, {sender: value})
    return {r: pick(changed, r) for r in receivers}


def pick(values: dict[str, torch.Tensor], key: tuple[str, int | None]) -> torch.Tensor:
    v = values[key[0]]
    return v if key[1] is None else v[:, key[1]]


def evaluate(
    x: torch.Tensor,
    y: torch.Tensor,
    opr: torch.Tensor,
    overrides: Overrides | None = None,
    *,
    answer_only: bool = False,
) -> dict[str, torch.Tensor]:
    """Every variable of every row: per-column ones as [B, digits] ([B, digits+1] for A), others [B].

    Values are int8 (a quarter of the memory traffic of int64 on big batches); ``sign``
    (the sign token) is added so the full answer is known. ``answer_only`` skips the
    variables of an operation that no row uses, leaving them out of the result.
    It is the causal model's one topological pass over the DAG above, so it stays one function.
    """
    by_name: dict[str, list[tuple[int | None, torch.Tensor]]] = {}
    for (name, n), value in (overrides or {}).items():
        by_name.setdefault(name, []).append((n, value.to(SMALL)))
    x, y, opr = x.to(SMALL), y.to(SMALL), opr.to(SMALL)

    def forced(name: str, value: torch.Tensor) -> torch.Tensor:
        for n, v in by_name.get(name, ()):
            if n is None:
                value = v.clone()
            else:
                value[:, n] = v
        return value

    def cascade(name: str, tri: torch.Tensor) -> torch.Tensor:
        columns, prev = [], torch.zeros_like(tri[:, 0])
        overridden = dict(by_name.get(name, ()))
        for n in range(tri.shape[1]):
            prev = torch.where(tri[:, n] == UNCERTAIN, prev, (tri[:, n] == CARRY).to(SMALL))
            if n in overridden:
                prev = overridden[n].expand_as(prev).clone()
            columns.append(prev)
        return torch.stack(columns, dim=1)

    def digits_of(base: torch.Tensor, cascaded: torch.Tensor, step: int, top: torch.Tensor) -> torch.Tensor:
        incoming = torch.cat([torch.zeros_like(cascaded[:, :1]), cascaded[:, :-1]], dim=1)
        return torch.cat([(base + step * incoming) % 10, top[:, None]], dim=1)

    v: dict[str, torch.Tensor] = {}
    v["OPR"] = forced("OPR", opr.clone())
    need_add = need_sub = not answer_only or bool(by_name)
    if not need_add:
        need_add, need_sub = bool((opr == 0).any()), bool((opr == 1).any())
    zero = torch.zeros_like(opr)
    answer = torch.zeros(x.shape[0], x.shape[1] + 1, dtype=SMALL, device=x.device)
    if need_add:
        total = x + y
        v["SA"] = forced("SA", total % 10)
        v["SC"] = forced("SC", (total >= 10).to(SMALL))
        v["SS"] = forced("SS", (total == 9).to(SMALL))
        v["ST"] = forced("ST", tricase(v["SC"], v["SS"]))
        v["SV"] = cascade("SV", v["ST"])
        answer = digits_of(v["SA"], v["SV"], 1, v["SV"][:, -1])
    v["SGN"] = zero
    if need_sub:
        diff = x - y
        v["MD"] = forced("MD", diff % 10)
        v["MB"] = forced("MB", (diff < 0).to(SMALL))
        v["MZ"] = forced("MZ", (diff == 0).to(SMALL))
        v["MT"] = forced("MT", tricase(v["MB"], v["MZ"]))
        v["MV"] = cascade("MV", v["MT"])
        v["ND"] = forced("ND", (-diff) % 10)
        v["NB"] = forced("NB", (diff > 0).to(SMALL))
        v["NZ"] = forced("NZ", (diff == 0).to(SMALL))
        v["NT"] = forced("NT", tricase(v["NB"], v["NZ"]))
        v["NV"] = cascade("NV", v["NT"])
        v["GT"] = forced("GT", (diff > 0).to(SMALL))
        sgn = zero
        for n in range(x.shape[1]):
            sgn = torch.where(v["MZ"][:, n] == 1, sgn, 1 - v["GT"][:, n])
        v["SGN"] = forced("SGN", sgn)
        pos = digits_of(v["MD"], v["MV"], -1, zero)
        neg = digits_of(v["ND"], v["NV"], -1, zero)
        sub = torch.where((v["SGN"] == 1)[:, None], neg, pos)
        answer = torch.where((v["OPR"] == 1)[:, None], sub, answer)
    v["A"] = forced("A", answer)
    v["sign"] = torch.where((v["OPR"] == 1) & (v["SGN"] == 1), MINUS, PLUS).to(SMALL)
    return v
