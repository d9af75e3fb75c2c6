"""Attention-only planted circuits: n-digit addition with hand-set weights and no MLP at all.

``testing.planted`` builds its carries and its digit readout from MLP thresholds. Here every
nonlinearity is a softmax instead, so the model is a TransformerLens 4 ``attn_only`` bridge
without normalization, and its ground truth (node id -> head sites) is known exactly. The
algorithm (``P_k`` = the position predicting ``A(k)``, ``V`` = the carry position, one of
``D'(0)``, ``=``, ``sign``, drawn by the seed)::

    SA{k}  head(s) at P_k: copy D_k and D'_k (two heads, or one split head) -> s_k = D_k + D'_k
    ST{j}  head(s) at V, layer <= j: the same for column j -> s_j
    SV{j}  one step head at V, layer j + 1: sv_j = [s_j + sv_(j-1) >= 10], the cascaded carry
    C{k}   one head at P_k: moves sv_(k-1) from V to P_k (k >= 1)
    A{k}   at P_k, one layer: a copy head writes x = s_k + sv_(k-1) into the answer dimension and
           a step head subtracts 10 [x >= 10], so it holds y = A(k) = x mod 10; A{digits} is the
           copy head alone (y = sv_(digits-1))

Why a step head is exact: it attends only two keys, the positions ``LO`` and ``HI`` (the
first two tokens, whose positional embeddings make them the only keys the head's query can
score). Its query gives ``LO`` the score ``BASE`` and ``HI`` the score ``BASE + STEEP (x - 9.5)``;
``x`` is an integer, so the softmax puts all but ``exp(-STEEP / 2)`` of its weight on ``HI``
exactly when ``x >= 10``, and the value (1 at ``HI``, 0 at ``LO``) is that step. At any other
query position an extra ``GATE`` on ``LO`` silences the head. The unembedding reads the answer
dimension ``y`` quadratically, ``logit_t = LOGIT (2 t y - t^2)`` (plus a shared offset),
whose argmax over digits is ``t = y`` with a margin of ``LOGIT``.

So the model answers every question of the task, and each node's sites realise its variable
of the task's causal model: patching SV{j} from another question carries that question's carry
onward, patching both heads of A{k} writes its answer digit. Decoy heads copy digits into
residual dimensions nothing reads. ``hypothesis_yaml(planted)`` (``testing.recovery``) states
the algorithm with ``site: head`` for SV and A; ``recovery`` scores a verdict against ``truth``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import torch

from circuitspec.tasks.layout import EQUALS, PLUS, Layout
from circuitspec.testing.planted import PlantedModel, PlantError, _site_key
from circuitspec.testing.weights import CARRY, DIGIT, LOGIT, SCORE, Dims, HeadUse

STEP, COPY = "step", "copy"  # head kinds with one use each (their reads are that use's)
LO, HI = 0, 1  # the two keys a step head chooses between
BASE = 100.0  # score of LO at a step head's own position: beats every other key by e^100
STEEP = 60.0  # score gain per unit of x: a wrong step has weight below exp(-30)
GATE = 5000.0  # extra score of LO away from the head's position (x there is at most ~30)
THRESHOLD = 9.5  # x >= 10 is a carry


@dataclass(frozen=True)
class AttnPlantParams:
    """The shape of an attention-only planted model: ``digits`` (1 to 4), ``n_heads`` per layer
    (``digits + 3`` layers), ``split_prob`` (chance an SA / ST node is one split head),
    ``decoy_heads``, and ``carry_position`` (pins V; drawn from D'(0), =, sign otherwise)."""

    digits: int = 2
    n_heads: int = 4
    split_prob: float = 0.5
    decoy_heads: int = 2
    carry_position: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digits, int) or not 1 <= self.digits <= 4:
            raise PlantError(f"planted models support 1 to 4 digits, got {self.digits!r}")
        if self.n_heads < 4:
            raise PlantError(f"an attention-only planted model needs at least 4 heads per layer, got {self.n_heads}")
        if self.decoy_heads < 0 or not 0.0 <= self.split_prob <= 1.0:
            raise PlantError("decoy_heads must be non-negative and split_prob in 0..1")

    @property
    def n_layers(self) -> int:
        return self.digits + 3


@dataclass
class AttnPlanted(PlantedModel):
    """An attention-only planted model with its ground truth (as ``planted.Planted``: ``truth``
    node id -> head sites, ``kinds``, ``variables``, ``decoys``); every node is heads."""

    model: Any  # circuitspec.models.Model
    params: AttnPlantParams
    seed: int
    truth: dict[str, list[str]]
    variables: dict[str, tuple[str, int]]
    decoys: list[str]
    heads: list[HeadUse]
    carry_position: int
    kinds: dict[str, str] = field(default_factory=dict)
    mlp_truth: dict[str, str] = field(default_factory=dict)  # no MLPs
    attn_only: bool = True


def plant_attn(params: AttnPlantParams | None = None, seed: int = 0, *, name: str | None = None) -> AttnPlanted:
    """Build an attention-only planted addition model and its ground truth; same (params, seed), same model."""
    params = params or AttnPlantParams()
    rng = random.Random(f"circuitspec.planted_attn/{seed}")
    uses, htype, reads, V = _plan(params, rng)
    dims = Dims()
    for block, width in (("pos", Layout(params.digits).n_ctx), ("val", 1), ("eq", 1), ("sv", params.digits), ("ans", 1)):
        dims.add(block, width)
    for (layer, h), kind in sorted(htype.items()):
        if kind in (DIGIT, CARRY):
            dims.add(f"h{layer}.{h}", params.digits if kind == CARRY else 1)

    from circuitspec.models.card import Architecture

    lay = Layout(params.digits)
    arch = Architecture(
        n_layers=params.n_layers, n_heads=params.n_heads, d_model=dims.size, d_head=lay.n_ctx, d_mlp=0, n_ctx=lay.n_ctx,
        normalization=None, attn_only=True,
    )  # fmt: skip
    resolved = {key: ({dims[b] + i: w for (b, i), w in x.items()}, dims[out[0]] + out[1], w_out) for key, (x, out, w_out) in reads.items()}
    tensors = _state_dict(arch, dims, uses, htype, resolved, params.digits)
    model = _model(arch, tensors, params, seed, name)
    truth: dict[str, list[str]] = {}
    for u in uses:
        if u.role != "decoy":
            truth.setdefault(u.role, []).append(u.site)
    n = params.digits
    variables = {f"SA{k}": ("SA", k) for k in range(n)} | {f"ST{j}": ("ST", j) for j in range(n)}
    variables |= {f"SV{j}": ("SV", j) for j in range(n)} | {f"C{k}": ("SV", k - 1) for k in range(1, n + 1)}
    variables |= {f"A{k}": ("A", k) for k in range(n + 1)}
    return AttnPlanted(
        model=model, params=params, seed=seed, truth={k: sorted(v, key=_site_key) for k, v in sorted(truth.items())},
        variables=variables, decoys=sorted({u.site for u in uses if u.role == "decoy"}, key=_site_key), heads=uses,
        carry_position=V, kinds={node: "head" for node in truth},
    )  # fmt: skip


def _plan(params: AttnPlantParams, rng: random.Random):
    """Where every node goes: (head uses, (layer, head) -> kind, (layer, head) -> its reads, V).

    Layers follow the data: ST{j} at or before j, SV{j} at j + 1, C{k} after SV{k-1}, A{k} after
    C{k} (A{digits} on the last layer). Step and copy heads serve one position, so their weights
    read exactly their own node's inputs; digit and carry heads may serve several positions."""
    n, H, R = params.digits, params.n_heads, params.n_layers - 1
    lay = Layout(n)
    P = {k: lay.predicts(k) for k in range(n + 1)}
    tail = [lay.d_prime(0), lay.equals, lay.sign]
    if params.carry_position is not None and params.carry_position not in tail:
        raise PlantError(f"carry_position must be one of {tail} (D'(0), =, sign), got {params.carry_position}")
    V = params.carry_position if params.carry_position is not None else rng.choice(tail)
    used: dict[tuple[int, int], set[int]] = {}
    htype: dict[tuple[int, int], str] = {}
    uses: list[HeadUse] = []
    # (layer, head) of a step or copy head -> ({(block, offset): weight} it reads, (block, offset) it writes, weight)
    reads: dict[tuple[int, int], tuple[dict, tuple[str, int], float]] = {}

    def free(layer: int, pos: int, kind: str) -> list[int]:
        if kind in (STEP, COPY):
            return [h for h in range(H) if (layer, h) not in htype]
        return [h for h in range(H) if h not in used.get((layer, pos), set()) and htype.get((layer, h), kind) == kind]

    def take(layers, pos: int, kind: str, targets: tuple[int, ...], role: str, need: int = 1) -> tuple[int, list[int]]:
        feasible = [layer for layer in layers if len(free(layer, pos, kind)) >= need]
        if not feasible:
            raise PlantError(f"no layer has {need} free head(s) for {role}", hint="use more heads")
        layer = rng.choice(feasible)
        heads = rng.sample(free(layer, pos, kind), need)
        for h in heads:
            used.setdefault((layer, pos), set()).add(h)
            htype[(layer, h)] = kind
            uses.append(HeadUse(layer, h, pos, targets, role))
        return layer, heads

    def pair(layers, pos: int, k: int, role: str) -> list[HeadUse]:
        """SA / ST: two heads copying D_k and D'_k, or one splitting its attention (carrying s / 2)."""
        if rng.random() < params.split_prob:
            take(layers, pos, DIGIT, (lay.d(k), lay.d_prime(k)), role)
            return uses[-1:]
        layer, heads = take(layers, pos, DIGIT, (lay.d(k),), role, need=2)
        uses[-1] = HeadUse(layer, heads[1], pos, (lay.d_prime(k),), role)
        return uses[-2:]

    def sum_of(group: list[HeadUse]) -> dict[tuple[str, int], float]:
        """The linear read of s = D + D' from a pair's private dims."""
        return {(f"h{u.layer}.{u.head}", 0): 2.0 if len(u.targets) == 2 else 1.0 for u in group}

    for j in range(n):  # the cascade: SV{j} at layer j + 1, its ST{j} heads before it
        layer, (h,) = take([j + 1], V, STEP, (LO, HI), f"SV{j}")
        x = sum_of(pair(range(j + 1), V, j, f"ST{j}")) | ({("sv", j - 1): 1.0} if j else {})
        reads[(layer, h)] = (x, ("sv", j), 1.0)
    for k in range(n, -1, -1):  # movers and readouts, the top digit first (its layers are forced)
        x = {}
        if k:
            c_layer, (c,) = take(range(k + 1, R), P[k], CARRY, (V,), f"C{k}")
            x[(f"h{c_layer}.{c}", k - 1)] = 1.0  # the mover's copy of sv_(k-1)
        earliest = c_layer + 1 if k else 1
        layers = [R] if k == n else list(range(earliest, R + 1))
        layer, (copy, *step) = take(layers, P[k], COPY, (P[k],), f"A{k}", need=1 if k == n else 2)
        if step:  # the second head is A{k}'s step head
            htype[(layer, step[0])] = STEP
            uses[-1] = HeadUse(layer, step[0], P[k], (LO, HI), f"A{k}")
        if k < n:
            x |= sum_of(pair(range(layer), P[k], k, f"SA{k}"))
        reads[(layer, copy)] = (x, ("ans", 0), 1.0)
        if step:
            reads[(layer, step[0])] = (x, ("ans", 0), -10.0)

    digits = [lay.d(j) for j in range(n)] + [lay.d_prime(j) for j in range(n)]
    for _ in range(params.decoy_heads * 20):  # copies of a digit into a dimension nothing reads
        if sum(u.role == "decoy" for u in uses) == params.decoy_heads:
            break
        layer, pos = rng.randrange(R + 1), rng.randrange(lay.d_prime(0), lay.n_ctx - 1)
        if free(layer, pos, DIGIT):
            take([layer], pos, DIGIT, (rng.choice(digits),), "decoy")
    return uses, htype, reads, V


def _state_dict(arch, dims: Dims, uses: list[HeadUse], htype: dict, reads: dict, n: int) -> dict[str, torch.Tensor]:
    """The bridge state dict (float64 while building, float32 out). Keys are positional for every
    head; digit, carry and copy heads look their targets up by the query's position, as in
    ``testing.weights``; step heads score LO and HI from the query's x (module docstring)."""
    from circuitspec.models.build import expected_shapes

    H, dh, n_ctx = arch.n_heads, arch.d_head, arch.n_ctx
    t = {k: torch.zeros(s, dtype=torch.float64) for k, s in expected_shapes(arch).items()}
    for tok in range(10):
        t["embed.weight"][tok, dims["val"]] = float(tok)
    t["embed.weight"][EQUALS, dims["eq"]] = 1.0
    for p in range(n_ctx):
        t["pos_embed.weight"][p, dims["pos"] + p] = 1.0
    gain = math.sqrt(dh)  # TransformerLens divides scores by sqrt(d_head)
    table = {(u.layer, u.head, u.position): u.targets for u in uses}
    position_of = {(u.layer, u.head): u.position for u in uses if htype[(u.layer, u.head)] == STEP}
    for layer in range(arch.n_layers):
        b = f"blocks.{layer}.attn"
        q, k, v, o = (t[f"{b}.{x}.weight"] for x in "qkvo")
        for h in range(H):
            row = h * dh
            for p in range(n_ctx):
                k[row + p, dims["pos"] + p] = 1.0
            kind = htype.get((layer, h), DIGIT)
            if kind == STEP:
                x, out, weight = reads[(layer, h)]
                t[f"{b}.q.bias"][row + LO] = BASE * gain
                for p in range(n_ctx):
                    if p != position_of[(layer, h)]:
                        q[row + LO, dims["pos"] + p] = GATE * gain
                t[f"{b}.q.bias"][row + HI] = (BASE - STEEP * THRESHOLD) * gain
                for dim, w in x.items():
                    q[row + HI, dim] = STEEP * w * gain
                v[row, dims["pos"] + HI] = 1.0
                o[out, row] = weight
                continue
            for p in range(n_ctx):  # idle positions attend OPR (which carries nothing), or themselves before it
                for target in table.get((layer, h, p), (n,) if p >= n else (p,)):
                    q[row + target, dims["pos"] + p] += SCORE * gain
            if kind == CARRY:
                for i in range(n):
                    v[row + i, dims["sv"] + i] = 1.0
                    o[dims[f"h{layer}.{h}"] + i, row + i] = 1.0
            elif kind == COPY:
                x, out, weight = reads[(layer, h)]
                for dim, w in x.items():
                    v[row, dim] = w
                o[out, row] = weight
            else:
                v[row, dims["val"]] = 1.0
                if (layer, h) in htype:
                    o[dims[f"h{layer}.{h}"], row] = 1.0
    for digit in range(10):  # argmax over t of 2 t y - t^2 is t = y; the 0.5 keeps '0' above the other tokens
        t["unembed.weight"][digit, dims["ans"]] = 2 * digit * LOGIT
        t["unembed.bias"][digit] = (0.5 - digit**2) * LOGIT
    t["unembed.weight"][PLUS, dims["eq"]] = LOGIT  # '=' is followed by the sign '+'
    return {key: val.float() for key, val in t.items()}


def _model(arch, tensors: dict[str, torch.Tensor], params: AttnPlantParams, seed: int, name: str | None):
    from circuitspec.models.card import ModelCard, TaskSpec
    from circuitspec.models.zoo import model_from_tensors

    card = ModelCard(
        name=name or f"planted_attn_add_d{params.digits}_l{arch.n_layers}_h{arch.n_heads}_s{seed}",
        architecture=arch,
        task=TaskSpec(op="add", digits=params.digits),
        notes=f"planted: attention-only weights set by hand (circuitspec.testing.planted_attn); params={params}, seed={seed}",
    )
    return model_from_tensors(card, tensors)
