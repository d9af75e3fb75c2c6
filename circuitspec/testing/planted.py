"""Planted circuits: models whose weights are set by hand to implement a known algorithm.

On a trained model nobody knows the true circuit, so a matcher can look right while being
wrong. A planted model is a TransformerLens 4 ``TransformerBridge`` of the zoo's type
(``boot_native``, LayerNorm, ReLU MLP, learned positions, vocabulary of 15) whose weights
compute n-digit addition exactly, through the paper's sub-task variables, at sites chosen
by a seed. Its ground truth (node id -> sites) is known, and the task's causal model is
exact for every planted node, so a matcher must find exactly those sites.

The planted algorithm (``digits`` = n, ``P_k`` = the position predicting ``A(k)``, ``V`` =
the carry position, one of ``D'(0)``, ``=``, ``sign``)::

    SA{k}  head(s) at P_k, layer b_k: copy D_k and D'_k (two heads, or one head
           splitting its attention between them) -> s_k = D_k + D'_k
    ST{j}  head(s) at V, layer a_j: the same for column j -> s_j
    SV{j}  MLP neurons at V, layer l_j (l_0 < l_1 < ...): the cascaded carry
           sv_j = [s_j >= 10] + [s_j == 9] * sv_(j-1), read from ST{j} and SV{j-1}
    C{k}   one head at P_k, last layer: moves sv_(k-1) from V to P_k (k >= 1)
    A{k}   MLP neurons at P_k, last layer: one-hot of (s_k + sv_(k-1)) mod 10
    sign   '+' from the '=' token's embedding (no node)

Every piece is an exact integer computation with margins of at least 0.25, so the model
answers every question of the task correctly, and zeroing or patching a planted site
changes the answer exactly as the causal model says (``ablation_overrides``). Decoy heads
copy the same digits (or the carry) into residual dimensions nothing reads, and decoy
neurons threshold the same sums into an unread dimension: they correlate with the
planted variables but have no effect.

API::

    planted = plant(PlantParams(digits=2, n_heads=4), seed=3)   # Planted
    planted.model                  # circuitspec.models.Model (card notes say "planted")
    planted.truth                  # {"SA0": ["P8.L1.H1", "P8.L1.H3"], "SV1": ["P4.L1.N[2,17,20,23,38,83]"], ...}
    planted.ablation_overrides(node, tokens)   # the answer with that node zeroed (causal model)
    hypothesis_yaml(planted)                   # the planted algorithm in the spec language
    hypothesis_yaml(planted, "shifted_sa")     # a wrong claim (see WRONG_KINDS)
    recovery(planted, verdict)                 # site-level precision / recall of a Verdict

LayerNorm is kept (the zoo's model type) and made exact: the residual stream holds a
large constant "anchor" (mirrored, so its mean is zero) that fixes the LayerNorm scale to
within a few parts per million whatever the content, and every read vector sums to zero
(a "sink" dimension nothing writes compensates), so the mean subtraction cancels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.tasks.layout import D_VOCAB, EQUALS, Layout

# Numerical design constants.
ANCHOR = 1.0e4  # size of the constant that pins the LayerNorm scale
SCORE = 30.0  # attention logit of a target key over every other key
GATE = 100.0  # big-M that switches a neuron off away from its position / when a gate bit is 0
RAMP = 0.25  # half-width of the ramps that make a step function (margin of every threshold)
LOGIT = 10.0  # logit of the answer the readout picks (all others 0)
DEFAULT_LOGIT = 0.5  # bias of token '0': what an answer position says when its readout is silenced

DIGIT, CARRY = "digit", "carry"  # what a head copies: the digit value, or the carry dims of V


class PlantError(CircuitSpecError):
    """Planting parameters that cannot be placed (too few heads or layers)."""


@dataclass(frozen=True)
class PlantParams:
    """The shape of a planted model and of the randomness in its circuit.

    ``digits``: 1 to 4. The model has ``digits + 1 + extra_layers`` layers and ``n_heads``
    heads per layer. ``split_prob``: chance that an SA / ST node is one head splitting its
    attention between D(n) and D'(n) rather than two heads. ``decoy_heads`` decoy head
    placements and ``decoy_neurons`` decoy neurons per planted MLP site. ``carry_position``
    pins V (a position between D'(0) and sign) instead of drawing it.
    """

    digits: int = 2
    n_heads: int = 4
    extra_layers: int = 0
    split_prob: float = 0.5
    decoy_heads: int = 3
    decoy_neurons: int = 2
    carry_position: int | None = None
    d_mlp: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digits, int) or not 1 <= self.digits <= 4:
            raise PlantError(f"planted models support 1 to 4 digits, got {self.digits!r}")
        if self.n_heads < 2:
            raise PlantError(f"a planted model needs at least 2 heads per layer, got {self.n_heads}")
        if self.extra_layers < 0 or self.decoy_heads < 0 or self.decoy_neurons < 0:
            raise PlantError("extra_layers, decoy_heads and decoy_neurons must be non-negative")
        if not 0.0 <= self.split_prob <= 1.0:
            raise PlantError(f"split_prob must be in 0..1, got {self.split_prob}")

    @property
    def n_layers(self) -> int:
        return self.digits + 1 + self.extra_layers


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


@dataclass
class Planted:
    """A planted model with its ground truth.

    ``truth``: node id -> the sites that realise it, as the engine prints them
    (``P7.L0.H1``; ``P9.L2.N[3,17]`` for neuron nodes). ``mlp_truth``: for neuron nodes,
    the whole-MLP site at the same place (``P9.L2.MLP``). ``core``: for neuron nodes, the
    planted neurons whose ablation alone changes some answer (all but the top carry's
    caps, see ``Neuron.cap``). ``kinds``: node id -> head /
    neurons. ``variables``: node id -> the variable it computes (``("SV", 1)``).
    ``decoys``: sites with no effect. ``heads``: every head use, planted and decoy.
    """

    model: Any  # circuitspec.models.Model
    params: PlantParams
    seed: int
    truth: dict[str, list[str]]
    mlp_truth: dict[str, str]
    core: dict[str, str]
    kinds: dict[str, str]
    variables: dict[str, tuple[str, int]]
    impacts: dict[str, list[int]]
    decoys: list[str]
    heads: list[HeadUse]
    neurons: list[Neuron]
    carry_position: int
    layers: dict[str, int]

    @property
    def bridge(self):
        return self.model.bridge

    @property
    def task(self):
        return self.model.task

    @property
    def layout(self) -> Layout:
        return Layout(self.params.digits)

    def site_nodes(self) -> dict[str, str]:
        """Planted site -> node id (neuron nodes by their neuron site)."""
        return {s: node for node, sites in self.truth.items() for s in sites}

    def ablation_overrides(self, node: str, tokens: torch.Tensor) -> torch.Tensor:
        """The answer tokens [B, n_answer] the model gives with ``node``'s sites zeroed.

        Zeroing SA{k} acts as SA(k) := 0, ST{j} as ST(j) := none, SV{j} as SV(j) := 0,
        A{k} as A(k) := 0 (the unembedding's bias prefers '0'); zeroing C{k} removes the
        carry from A(k) alone (A(k) := SA(k), or 0 for the top digit).
        """
        task = self.task
        name, n = self.variables[node]
        if node.startswith("C"):
            k = n + 1
            out = task.answers(tokens).clone()
            col = 1 + (self.params.digits - k)  # answer index of A(k): sign first, then A(digits)..A(0)
            out[:, col] = task.variable(tokens, "SA", k) if k < self.params.digits else 0
            return out
        return task.causal_answer(tokens, {(name, n): 0})


# ----------------------------------------------------------------------------- residual layout


class _Dims:
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


def _step(reads: dict, at: float, weight: float) -> list[tuple[dict, float, float]]:
    """Two ramps whose weighted difference is ``weight * [x >= at]`` for x at least RAMP from ``at``.

    Returns (reads, bias, output weight) per ramp; ``reads`` is the linear input x.
    """
    k = 1.0 / (2 * RAMP)
    return [(reads, -(at - RAMP), weight * k), (reads, -(at + RAMP), -weight * k)]


# ----------------------------------------------------------------------------- the plan


def _plan(params: PlantParams, rng: random.Random) -> dict[str, Any]:
    """Draw every random choice: positions, layers, heads, split, decoys."""
    n, H, L = params.digits, params.n_heads, params.n_layers
    lay = Layout(n)
    R = L - 1
    P = {k: lay.predicts(k) for k in range(n + 1)}
    tail = [lay.d_prime(0), lay.equals, lay.sign]
    if params.carry_position is not None:
        if params.carry_position not in tail:
            raise PlantError(f"carry_position must be one of {tail} (D'(0), =, sign), got {params.carry_position}")
        V = params.carry_position
    else:
        V = rng.choice(tail)
    cascade = sorted(rng.sample(range(R), n))  # l_0 < l_1 < ... <= R - 1

    used: dict[tuple[int, int], set[int]] = {}  # (layer, position) -> heads in use
    htype: dict[tuple[int, int], str] = {}  # (layer, head) -> DIGIT / CARRY
    uses: list[HeadUse] = []

    def free(layer: int, pos: int, kind: str) -> list[int]:
        taken = used.get((layer, pos), set())
        return [h for h in range(H) if h not in taken and htype.get((layer, h), kind) == kind]

    def take(layer: int, pos: int, head: int, kind: str, targets: tuple[int, ...], role: str) -> None:
        used.setdefault((layer, pos), set()).add(head)
        htype[(layer, head)] = kind
        uses.append(HeadUse(layer, head, pos, targets, role))

    # C{k}: the carry mover at P_k, last layer (reuses a carry head when it can).
    for k in range(1, n + 1):
        options = free(R, P[k], CARRY)
        if not options:
            raise PlantError("no free head for a carry mover", hint="use more heads")
        take(R, P[k], rng.choice(options), CARRY, (V,), f"C{k}")

    def place_pair(node: str, pos: int, layers: list[int], a: int, b: int) -> tuple[int, list[int], bool]:
        split = rng.random() < params.split_prob
        need = 1 if split else 2
        feasible = [layer for layer in layers if len(free(layer, pos, DIGIT)) >= need]
        if not feasible:
            raise PlantError(f"no layer has {need} free head(s) for {node}", hint="use more heads or layers")
        layer = rng.choice(feasible)
        heads = rng.sample(free(layer, pos, DIGIT), need)
        if split:
            take(layer, pos, heads[0], DIGIT, (a, b), node)
        else:
            take(layer, pos, heads[0], DIGIT, (a,), node)
            take(layer, pos, heads[1], DIGIT, (b,), node)
        return layer, heads, split

    st, sa = {}, {}
    for j in range(n):
        st[j] = place_pair(f"ST{j}", V, list(range(cascade[j] + 1)), lay.d(j), lay.d_prime(j))
    for k in range(n):
        sa[k] = place_pair(f"SA{k}", P[k], list(range(R + 1)), lay.d(k), lay.d_prime(k))

    # Decoys: heads copying a planted signal (a digit, or the carry dims of V) into dims nobody reads.
    digit_positions = [lay.d(j) for j in range(n)] + [lay.d_prime(j) for j in range(n)]
    decoys = 0
    for _ in range(params.decoy_heads * 20):
        if decoys == params.decoy_heads:
            break
        layer = rng.randrange(L)
        pos = rng.choice([p for p in range(lay.d_prime(0), lay.n_ctx - 1)])
        kind = rng.choice([DIGIT, CARRY]) if pos >= V else DIGIT
        options = free(layer, pos, kind)
        if not options:
            continue
        if kind == CARRY:
            targets = (V,)
        else:
            k = next((k for k, p in P.items() if p == pos and k < n), None)
            if k is not None and rng.random() < 0.5:  # a shadow of SA{k}
                targets = (rng.choice([lay.d(k), lay.d_prime(k)]),)
            else:
                targets = (rng.choice(digit_positions),)
        take(layer, pos, rng.choice(options), kind, targets, "decoy")
        decoys += 1
    return {"V": V, "P": P, "R": R, "cascade": cascade, "st": st, "sa": sa, "uses": uses, "htype": htype}


# ----------------------------------------------------------------------------- weights


def plant(params: PlantParams | None = None, seed: int = 0, *, name: str | None = None) -> Planted:
    """Build a planted addition model and its ground truth; same (params, seed), same model."""
    params = params or PlantParams()
    rng = random.Random(f"circuitspec.planted/{seed}")
    plan = _plan(params, rng)
    n, H, L = params.digits, params.n_heads, params.n_layers
    lay = Layout(n)
    n_ctx = lay.n_ctx
    V, P, R, cascade = plan["V"], plan["P"], plan["R"], plan["cascade"]
    uses: list[HeadUse] = plan["uses"]
    htype = plan["htype"]

    # -- residual dims
    dims = _Dims()
    dims.add("anchor", 2)
    dims.add("sink", 1)
    dims.add("tok", D_VOCAB)
    dims.add("pos", n_ctx)
    dims.add("val", 1)
    dims.add("eq", 1)
    dims.add("sv", n)
    dims.add("ans", 10)
    dims.add("junk", 1)
    for layer in range(L):
        for h in range(H):
            width = n if htype.get((layer, h)) == CARRY else 1
            dims.add(f"h{layer}.{h}", width)
    d_model = dims.size
    d_head = max(n_ctx, n)

    def priv(layer: int, head: int, i: int = 0) -> int:
        return dims[f"h{layer}.{head}"] + i

    # -- MLP units
    units: list[Neuron] = []

    def gated(
        layer: int, pos: int, reads: dict, bias: float, writes: dict, role: str, gate: int | None = None, cap: bool = False
    ) -> None:
        r = dict(reads)
        r[dims["pos"] + pos] = r.get(dims["pos"] + pos, 0.0) + GATE
        b = bias - GATE
        if gate is not None:
            r[gate] = r.get(gate, 0.0) + GATE
            b -= GATE
        units.append(Neuron(layer, pos, r, b, writes, role, cap=cap))

    def head_sum(uses_of: list[HeadUse]) -> dict:
        """Linear read of s = D + D' from the private dims of a node's heads."""
        reads: dict[int, float] = {}
        for u in uses_of:
            w = 2.0 if len(u.targets) == 2 else 1.0  # a split head carries (D + D') / 2
            reads[priv(u.layer, u.head)] = w
        return reads

    by_role: dict[str, list[HeadUse]] = {}
    for u in uses:
        by_role.setdefault(u.role, []).append(u)

    sv = dims["sv"]
    junk = dims["junk"]
    for j in range(n):
        s = head_sum(by_role[f"ST{j}"])
        layer = cascade[j]
        # The top carry is read only by A(digits), which cannot tell 1 from more: there a unit
        # with a negative output weight (removing it can only raise sv) is a cap, needed
        # jointly with the others but not alone.
        top = j == n - 1
        for reads, bias, w in _step(s, 9.5, 1.0):
            gated(layer, V, reads, bias, {sv + j: w}, f"SV{j}", cap=top and w < 0)
        if j > 0:  # [s_j == 9] * sv_(j-1) = gated([s >= 8.5] - [s >= 9.5])
            for at, sign in ((8.5, 1.0), (9.5, -1.0)):
                for reads, bias, w in _step(s, at, sign):
                    gated(layer, V, reads, bias, {sv + j: w}, f"SV{j}", gate=sv + j - 1, cap=top and w < 0)
        for _ in range(params.decoy_neurons):  # thresholds of the same sum, written nowhere useful
            at = rng.choice([4.5, 5.5, 8.5, 9.5, 12.5])
            gated(layer, V, s, -at, {junk: 1.0}, "decoy")

    ans = dims["ans"]
    for k in range(n + 1):
        carry_in = by_role.get(f"C{k}", [])
        u: dict[int, float] = head_sum(by_role[f"SA{k}"]) if k < n else {}
        for c in carry_in:
            u[priv(c.layer, c.head, k - 1)] = 1.0
        top = (18 if k < n else 0) + (1 if k > 0 else 0)  # largest value of u
        # one-hot of u mod 10, telescoped: e_0 + sum over m < u of (e_(m+1 mod 10) - e_(m mod 10)).
        # e_0 is left to the unembedding's bias (a '0' wins when no ans dim is set), and the
        # last step needs no upper ramp (u never exceeds top), so every unit is needed.
        for m in range(top):
            out = {ans + (m + 1) % 10: 1.0}
            out[ans + m % 10] = out.get(ans + m % 10, 0.0) - 1.0
            ramps = _step(u, m + 0.5, 1.0) if m < top - 1 else [(u, -(m + 0.5 - RAMP), 1.0 / (1.0 - RAMP))]
            for reads, bias, w in ramps:
                gated(R, P[k], reads, bias, {d: w * x for d, x in out.items()}, f"A{k}")
        for _ in range(params.decoy_neurons):
            if u:
                gated(R, P[k], u, -rng.choice([4.5, 9.5, 10.5]), {junk: 1.0}, "decoy")

    per_layer: dict[int, list[Neuron]] = {}
    for unit in units:
        per_layer.setdefault(unit.layer, []).append(unit)
    need = max(len(v) for v in per_layer.values())
    d_mlp = params.d_mlp or 32 * math.ceil(max(64, need * 1.25) / 32)
    if d_mlp < need:
        raise PlantError(f"d_mlp={d_mlp} is too small: a layer needs {need} units")
    placed: list[Neuron] = []
    for layer in range(L):
        order = rng.sample(range(d_mlp), d_mlp)
        for i, unit in enumerate(per_layer.get(layer, [])):
            placed.append(Neuron(unit.layer, unit.position, unit.reads, unit.bias, unit.writes, unit.role, order[i], unit.cap))

    # -- the bridge
    from circuitspec.models.card import Architecture

    arch = Architecture(n_layers=L, n_heads=H, d_model=d_model, d_head=d_head, d_mlp=d_mlp, n_ctx=n_ctx)
    tensors = _weights(arch, dims, uses, htype, placed, n)
    model = _model(arch, tensors, params, seed, name)

    # -- ground truth
    truth: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    variables: dict[str, tuple[str, int]] = {}
    impacts: dict[str, list[int]] = {}
    mlp_truth: dict[str, str] = {}
    core: dict[str, str] = {}
    layers: dict[str, int] = {}
    for role, group in by_role.items():
        if role == "decoy":
            continue
        truth[role] = sorted({u.site for u in group}, key=_site_key)
        kinds[role] = "head"
        layers[role] = group[0].layer
    for role in sorted({u.role for u in placed if u.role != "decoy"}):
        group = [u for u in placed if u.role == role]
        pos, layer = group[0].position, group[0].layer
        idx = sorted(u.index for u in group)
        truth[role] = [f"P{pos}.L{layer}.N[{','.join(map(str, idx))}]"]
        needed = sorted(u.index for u in group if not u.cap)
        core[role] = f"P{pos}.L{layer}.N[{','.join(map(str, needed))}]"
        mlp_truth[role] = f"P{pos}.L{layer}.MLP"
        kinds[role] = "neurons"
        layers[role] = layer
    for j in range(n):
        variables[f"ST{j}"] = ("ST", j)
        variables[f"SV{j}"] = ("SV", j)
        impacts[f"ST{j}"] = impacts[f"SV{j}"] = list(range(j + 1, n + 1))
    for k in range(n):
        variables[f"SA{k}"] = ("SA", k)
        impacts[f"SA{k}"] = [k]
    for k in range(n + 1):
        variables[f"A{k}"] = ("A", k)
        impacts[f"A{k}"] = [k]
    for k in range(1, n + 1):
        variables[f"C{k}"] = ("SV", k - 1)
        impacts[f"C{k}"] = [k]
    decoys = sorted({u.site for u in uses if u.role == "decoy"}, key=_site_key)
    decoys += sorted(
        {f"P{u.position}.L{u.layer}.N[{u.index}]" for u in placed if u.role == "decoy"}, key=_site_key
    )
    return Planted(
        model=model,
        params=params,
        seed=seed,
        truth=dict(sorted(truth.items(), key=lambda kv: _node_key(kv[0]))),
        mlp_truth=mlp_truth,
        core=core,
        kinds=kinds,
        variables=variables,
        impacts=impacts,
        decoys=decoys,
        heads=uses,
        neurons=placed,
        carry_position=V,
        layers=layers,
    )


def _site_key(site: str) -> tuple:
    from circuitspec.engine.sites import Site

    return Site.parse(site).sort_key


def _node_key(node: str) -> tuple:
    order = {"SA": 0, "ST": 1, "SV": 2, "C": 3, "A": 4}
    name = node.rstrip("0123456789")
    return (order.get(name, 9), int(node[len(name):] or 0))


def _weights(arch, dims: _Dims, uses: list[HeadUse], htype: dict, units: list[Neuron], n: int) -> dict[str, torch.Tensor]:
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

    a0 = dims["anchor"]
    for tok in range(D_VOCAB):
        t["embed.weight"][tok, dims["tok"] + tok] = 1.0
        if tok < 10:
            t["embed.weight"][tok, dims["val"]] = float(tok)
        if tok == EQUALS:
            t["embed.weight"][tok, dims["eq"]] = 1.0
    for p in range(n_ctx):
        t["pos_embed.weight"][p, dims["pos"] + p] = 1.0
        t["pos_embed.weight"][p, a0] = ANCHOR
        t["pos_embed.weight"][p, a0 + 1] = -ANCHOR
    scale = math.sqrt(2 * ANCHOR**2 / d)  # LayerNorm's divisor when only the anchor is present
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
    return {k: v.float() for k, v in t.items()}


def _model(arch, tensors: dict[str, torch.Tensor], params: PlantParams, seed: int, name: str | None):
    from circuitspec.models.card import ModelCard, TaskSpec
    from circuitspec.models.zoo import model_from_tensors

    name = name or f"planted_add_d{params.digits}_l{arch.n_layers}_h{arch.n_heads}_s{seed}"
    card = ModelCard(
        name=name,
        architecture=arch,
        task=TaskSpec(op="add", digits=params.digits),
        notes=(
            "planted: weights set by hand (circuitspec.testing.planted) to implement a known addition circuit; "
            f"params={params}, seed={seed}"
        ),
    )
    return model_from_tensors(card, tensors)


# ----------------------------------------------------------------------------- running


def answer_logits(logits: torch.Tensor, layout: Layout) -> torch.Tensor:
    """The logits [B, n_answer, d_vocab] that predict each answer token (teacher-forced)."""
    return logits[:, torch.tensor(layout.answer_positions) - 1]


def answers(bridge, tokens: torch.Tensor, layout: Layout, chunk: int = 4096) -> torch.Tensor:
    """Teacher-forced answer tokens [B, n_answer] (argmax of the logits before each answer token)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(tokens), chunk):
            out.append(answer_logits(bridge(tokens[start : start + chunk]), layout).argmax(-1))
    return torch.cat(out) if out else torch.zeros(0, layout.digits + 2, dtype=torch.long)


def all_questions(digits: int) -> torch.Tensor:
    """Every addition question of ``digits`` digits, with gold answers (10^(2 digits) rows)."""
    from circuitspec.tasks.arithmetic import ArithmeticTask
    from circuitspec.tasks.columns import assemble

    task = ArithmeticTask("add", digits)
    size = 10**digits
    a = torch.arange(size).repeat_interleave(size)
    b = torch.arange(size).repeat(size)
    x = torch.stack([(a // 10**i) % 10 for i in range(digits)], dim=1)
    y = torch.stack([(b // 10**i) % 10 for i in range(digits)], dim=1)
    opr = torch.zeros(len(a), dtype=torch.long)
    tokens = assemble(x, y, opr, torch.zeros(len(a), dtype=torch.long), torch.zeros(len(a), digits + 1, dtype=torch.long))
    tokens[:, task.layout.sign :] = task.answers(tokens)
    return tokens


# ----------------------------------------------------------------------------- hypotheses


def _position_ref(planted_or_layout, position: int) -> str:
    lay = planted_or_layout
    if position == lay.d_prime(0):
        return "D'(0)"
    if position == lay.equals:
        return "="
    if position == lay.sign:
        return "sign"
    return f"P({position})"


WRONG_KINDS = ("shifted_sa", "empty_position", "sa_at_carry")


def hypothesis_yaml(planted: Planted, wrong: str | None = None) -> str:
    """The hypothesis of the planted algorithm, in the spec language (see module docstring).

    It states what a researcher would: which variable each node computes, at which token
    and on which kind of site, what it attends to and which answer digits it impacts;
    never the layer, head or neuron indices (the matcher must find those).

    ``wrong`` makes one claim that was not planted (every other node stays right):

    - ``shifted_sa``: SA(n) is computed where A(n+1) is predicted (the neighbouring column);
    - ``empty_position``: ST(n) heads sit at OPR, where nothing was planted;
    - ``sa_at_carry``: SA(n) is computed at the carry position (whose heads see D(n) and
      D'(n), but whose output only ever feeds the carry).
    """
    if wrong is not None and wrong not in WRONG_KINDS:
        from circuitspec.errors import unknown

        raise unknown("wrong-hypothesis kind", wrong, WRONG_KINDS, PlantError)
    n = planted.params.digits
    v = _position_ref(planted.layout, planted.carry_position)
    name = f"planted-add-d{n}-s{planted.seed}" + (f"-wrong-{wrong.replace('_', '-')}" if wrong else "")
    sa_at, sa_range = "predicts A(n)", "0..digits-1"
    st_at = v
    if wrong == "shifted_sa":
        sa_at = "predicts A(n+1)"
    elif wrong == "sa_at_carry":
        sa_at = v
    elif wrong == "empty_position":
        st_at = "OPR"
    sa_impacts = "" if wrong else "\n    impacts: {exactly: A(n)}"
    return f"""# Planted circuit (circuitspec.testing.planted), seed {planted.seed}; carry position {v}.
name: {name}
task: add
applies_to: {{digits: {n}}}
nodes:
  - id: SA{{n}}
    description: two heads (or one split head) copy D(n) and D'(n); their sum is SA(n)
    for_each: {{n: {sa_range}}}
    computes: SA(n)
    site: head
    max_heads: 2
    at: "{sa_at}"
    attends: {{to: ["D(n)", "D'(n)"], min_share: 0.9}}{sa_impacts}
  - id: ST{{n}}
    description: the same for column n at the carry position
    for_each: {{n: 0..digits-1}}
    computes: ST(n)
    site: head
    max_heads: 2
    at: "{st_at}"
    attends: {{to: ["D(n)", "D'(n)"], min_share: 0.9}}
    impacts: {{at_least: A(n+1)}}
  - id: SV{{n}}
    description: neurons fold ST(n) and SV(n-1) into the cascaded carry
    for_each: {{n: 0..digits-1}}
    computes: SV(n)
    site: neurons
    at: "{v}"
    impacts: {{at_least: A(n+1)}}
  - id: C{{n}}
    description: a head moves the carry SV(n-1) to where A(n) is predicted
    for_each: {{n: 1..digits}}
    computes: SV(n-1)
    site: head
    at: predicts A(n)
    attends: {{to: "{v}", min_share: 0.9}}
    impacts: {{exactly: A(n)}}
  - id: A{{n}}
    description: the MLP reads (SA(n) + SV(n-1)) mod 10 into the answer
    for_each: {{n: 0..digits}}
    computes: A(n)
    site: mlp
    at: predicts A(n)
    impacts: {{exactly: A(n)}}
edges:
  - flow: ST{{n}} -> SV{{n}}
    for_each: {{n: 0..digits-1}}
  - flow: SV{{n-1}} -> SV{{n}}
    for_each: {{n: 1..digits-1}}
  - flow: SV{{n-1}} -> C{{n}}
    for_each: {{n: 1..digits}}
  - flow: C{{n}} -> A{{n}}
    for_each: {{n: 1..digits}}
  - flow: SA{{n}} -> A{{n}}
    for_each: {{n: 0..digits-1}}
"""


def expected_sites(planted: Planted) -> dict[str, list[str]]:
    """What ``verify`` should place each node of ``hypothesis_yaml`` on (A{k}: the MLP site)."""
    return {node: ([planted.mlp_truth[node]] if node.startswith("A") else sites) for node, sites in planted.truth.items()}


@dataclass(frozen=True)
class NodeRecovery:
    """How a verdict placed one planted node."""

    node: str
    status: str  # the verdict's node status
    expected: tuple[str, ...]
    found: tuple[str, ...]
    exact: bool  # found == expected (neuron nodes: same position, layer and neuron set)
    missing_neurons: tuple[int, ...] = ()
    extra_neurons: tuple[int, ...] = ()
    core_found: bool = True  # neuron nodes: every neuron needed alone was found


@dataclass(frozen=True)
class Recovery:
    """Site-level precision and recall of a verdict against a planted model's ground truth."""

    nodes: dict[str, NodeRecovery]
    status: str

    @staticmethod
    def _units(sites) -> set[str]:
        """Heads and MLPs as they are; a neuron site as one unit per neuron."""
        from circuitspec.engine.sites import Site

        out: set[str] = set()
        for text in sites:
            site = Site.parse(text)
            if site.kind == "neurons":
                out |= {f"P{site.position}.L{site.layer}.N[{i}]" for i in site.neurons}
            else:
                out.add(str(site))
        return out

    def _counts(self) -> tuple[int, int, int]:
        found = expected = right = 0
        for r in self.nodes.values():
            f, e = self._units(r.found), self._units(r.expected)
            found, expected, right = found + len(f), expected + len(e), right + len(f & e)
        return found, expected, right

    @property
    def precision(self) -> float:
        """Share of placed units (heads, MLPs, single neurons) that are planted for that node."""
        found, _, right = self._counts()
        return right / found if found else 1.0

    @property
    def recall(self) -> float:
        """Share of planted units that the verdict placed on their node."""
        _, expected, right = self._counts()
        return right / expected if expected else 1.0

    @property
    def recovered(self) -> bool:
        """Every node confirmed on exactly its planted sites."""
        return all(r.status == "confirmed" and r.exact for r in self.nodes.values())


def recovery(planted: Planted, verdict) -> Recovery:
    """Compare a ``Verdict`` for ``hypothesis_yaml(planted)`` with the ground truth."""
    from circuitspec.engine.sites import Site

    expected = expected_sites(planted)
    out: dict[str, NodeRecovery] = {}
    for node, want in expected.items():
        try:
            nv = verdict.node(node)
        except KeyError:
            out[node] = NodeRecovery(node, "missing", tuple(want), (), False, core_found=False)
            continue
        found = tuple(nv.sites)
        if planted.kinds.get(node) == "neurons" and not node.startswith("A"):
            w = Site.parse(want[0])
            got = [Site.parse(s) for s in found]
            same_place = len(got) == 1 and (got[0].position, got[0].layer, got[0].kind) == (w.position, w.layer, "neurons")
            have = set(got[0].neurons) if same_place else set()
            core = set(Site.parse(planted.core[node]).neurons)
            out[node] = NodeRecovery(
                node, nv.status, tuple(want), found,
                exact=same_place and have == set(w.neurons),
                missing_neurons=tuple(sorted(set(w.neurons) - have)),
                extra_neurons=tuple(sorted(have - set(w.neurons))),
                core_found=same_place and core <= have,
            )
        else:
            out[node] = NodeRecovery(node, nv.status, tuple(want), found, exact=set(found) == set(want))
    return Recovery(out, verdict.status)
