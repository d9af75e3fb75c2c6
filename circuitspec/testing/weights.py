"""How a planted circuit becomes weights: the residual layout, MLP units and the state dict.

``planted.plant`` decides what goes where (the plan); this module turns the plan into exact
integer computations with margins (see the ``planted`` module docstring for the design).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from circuitspec.tasks.layout import D_VOCAB, EQUALS

# Numerical design constants.
ANCHOR = 1.0e4  # size of the constant that pins the LayerNorm scale
SCORE = 30.0  # attention logit of a target key over every other key
GATE = 100.0  # big-M that switches a neuron off away from its position / when a gate bit is 0
RAMP = 0.25  # half-width of the ramps that make a step function (margin of every threshold)
LOGIT = 10.0  # logit of the answer the readout picks (all others 0)
DEFAULT_LOGIT = 0.5  # bias of token '0': what an answer position says when its readout is silenced

DIGIT, CARRY = "digit", "carry"  # what a head copies: the digit value, or the carry dims of V


@dataclass(frozen=True)
class HeadUse:
    """One head at one query position: what it attends to and why."""

    layer: int
    head: int
    position: int
    targets: tuple[int, ...]
    role: str  # node id, or "decoy"

    @property
    def site(self) -> str:
        return f"P{self.position}.L{self.layer}.H{self.head}"


@dataclass(frozen=True)
class Neuron:
    """One MLP unit: its input weights (residual dim -> weight), bias and output weights."""

    layer: int
    position: int
    reads: dict
    bias: float
    writes: dict
    role: str
    index: int = -1
    cap: bool = False  # only stops an overshoot that nothing downstream would notice


# ----------------------------------------------------------------------------- residual layout


class Dims:
    """Named blocks of residual dimensions, allocated in order."""

    def __init__(self) -> None:
        self.size = 0
        self.blocks: dict[str, tuple[int, int]] = {}

    def add(self, name: str, width: int) -> int:
        start = self.size
        self.blocks[name] = (start, width)
        self.size += width
        return start

    def __getitem__(self, name: str) -> int:
        return self.blocks[name][0]


def step(reads: dict, at: float, weight: float) -> list[tuple[dict, float, float]]:
    """Two ramps whose weighted difference is ``weight * [x >= at]`` for x at least RAMP from ``at``.

    Returns (reads, bias, output weight) per ramp; ``reads`` is the linear input x.
    """
    k = 1.0 / (2 * RAMP)
    return [(reads, -(at - RAMP), weight * k), (reads, -(at + RAMP), -weight * k)]


# ----------------------------------------------------------------------------- weights


def state_dict(arch, dims: Dims, uses: list[HeadUse], htype: dict, units: list[Neuron], n: int) -> dict[str, torch.Tensor]:
    """The bridge state dict implementing the plan (float64 while building, float32 out)."""
    from circuitspec.models.build import expected_shapes

    d, H, dh, L, n_ctx = arch.d_model, arch.n_heads, arch.d_head, arch.n_layers, arch.n_ctx
    t = {k: torch.zeros(s, dtype=torch.float64) for k, s in expected_shapes(arch).items()}
    sink = dims["sink"]

    def zero_sum(row: torch.Tensor) -> torch.Tensor:
        """Make a read vector blind to the LayerNorm mean: the sink (never written) balances it."""
        row[sink] = 0.0
        row[sink] = -row.sum()
        return row

    # The anchor pins the scale a LayerNorm or RMSNorm divides by; learned norm weights multiply
    # it back, and without them (LNPre) the readers of the normalized stream do. With no
    # normalization there is nothing to pin and the stream is read as it is.
    norm = arch.normalization
    anchor = ANCHOR if norm is not None else 0.0
    a0 = dims["anchor"]
    for tok in range(D_VOCAB):
        t["embed.weight"][tok, dims["tok"] + tok] = 1.0
        if tok < 10:
            t["embed.weight"][tok, dims["val"]] = float(tok)
        if tok == EQUALS:
            t["embed.weight"][tok, dims["eq"]] = 1.0
    for p in range(n_ctx):
        t["pos_embed.weight"][p, dims["pos"] + p] = 1.0
        t["pos_embed.weight"][p, a0] = anchor
        t["pos_embed.weight"][p, a0 + 1] = -anchor
    scale = math.sqrt(2 * ANCHOR**2 / d)  # the norm's divisor when only the anchor is present
    for key in t:
        if key.endswith(("ln1.weight", "ln2.weight")) or key == "ln_final.weight":
            t[key][:] = scale

    # Attention: a positional lookup table per head; idle query positions attend a token whose
    # copied features are zero (OPR), or themselves before OPR.
    opr = n
    table: dict[tuple[int, int, int], tuple[int, ...]] = {(u.layer, u.head, u.position): u.targets for u in uses}
    q_gain = SCORE * math.sqrt(dh)
    for layer in range(L):
        b = f"blocks.{layer}.attn"
        for h in range(H):
            for p in range(n_ctx):
                t[f"{b}.k.weight"][h * dh + p, dims["pos"] + p] = 1.0
            for q in range(n_ctx):
                targets = table.get((layer, h, q), (opr,) if q >= opr else (q,))
                for key_pos in targets:
                    t[f"{b}.q.weight"][h * dh + key_pos, dims["pos"] + q] += q_gain
            if htype.get((layer, h)) == CARRY:
                for i in range(n):
                    t[f"{b}.v.weight"][h * dh + i, dims["sv"] + i] = 1.0
                    t[f"{b}.o.weight"][dims[f"h{layer}.{h}"] + i, h * dh + i] = 1.0
            else:
                t[f"{b}.v.weight"][h * dh, dims["val"]] = 1.0
                t[f"{b}.o.weight"][dims[f"h{layer}.{h}"], h * dh] = 1.0
        for p in ("q", "k", "v"):
            w = t[f"{b}.{p}.weight"]
            for row in range(w.shape[0]):
                if w[row].abs().sum() > 0:
                    zero_sum(w[row])

    for unit in units:
        b = f"blocks.{unit.layer}.mlp"
        row = t[f"{b}.in.weight"][unit.index]
        for dim, w in unit.reads.items():
            row[dim] += w
        zero_sum(row)
        t[f"{b}.in.bias"][unit.index] = unit.bias
        for dim, w in unit.writes.items():
            t[f"{b}.out.weight"][dim, unit.index] += w

    for digit in range(10):
        t["unembed.weight"][digit, dims["ans"] + digit] = LOGIT
    t["unembed.weight"][10, dims["eq"]] = LOGIT  # '=' is followed by the sign '+'
    for tok in range(D_VOCAB):
        zero_sum(t["unembed.weight"][tok])
    t["unembed.bias"][0] = DEFAULT_LOGIT  # with no readout (A{k} ablated) the answer is a clean '0
    if norm == "LNPre":
        for key in t:
            if key.endswith(("attn.q.weight", "attn.k.weight", "attn.v.weight", "mlp.in.weight")) or key == "unembed.weight":
                t[key] *= scale
    return {k: v.float() for k, v in t.items()}
