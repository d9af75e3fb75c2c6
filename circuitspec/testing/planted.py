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
    hypothesis_yaml(planted)                   # the planted algorithm in the spec language (testing.recovery)
    hypothesis_yaml(planted, "shifted_sa")     # a wrong claim (see WRONG_KINDS)
    recovery(planted, verdict)                 # site-level precision / recall of a Verdict (testing.recovery)

Weights are built in ``testing.weights``.

LayerNorm is kept (the zoo's model type) and made exact: the residual stream holds a
large constant "anchor" (mirrored, so its mean is zero) that fixes the LayerNorm scale to
within a few parts per million whatever the content, and every read vector sums to zero
(a "sink" dimension nothing writes compensates), so the mean subtraction cancels. The same
anchor pins RMSNorm's scale and LNPre's (whose readers then carry the scale); a model without
normalization needs no anchor (``PlantParams.normalization``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError
from circuitspec.tasks.layout import D_VOCAB, Layout
from circuitspec.testing.weights import CARRY, DIGIT, GATE, RAMP, Dims, HeadUse, Neuron, state_dict, step

class PlantError(CircuitSpecError):
    """Planting parameters that cannot be placed (too few heads or layers)."""


@dataclass(frozen=True)
class PlantParams:
    """The shape of a planted model and of the randomness in its circuit.

    ``digits``: 1 to 4. The model has ``digits + 1 + extra_layers`` layers and ``n_heads``
    heads per layer. ``split_prob``: chance that an SA / ST node is one head splitting its
    attention between D(n) and D'(n) rather than two heads. ``decoy_heads`` decoy head
    placements and ``decoy_neurons`` decoy neurons per planted MLP site. ``carry_position``
    pins V (a position between D'(0) and sign) instead of drawing it. ``normalization``: the
    model's (LN, LNPre, RMS or None); the circuit is the same, and only an LN model runs on the
    engine's fast path.
    """

    digits: int = 2
    n_heads: int = 4
    extra_layers: int = 0
    split_prob: float = 0.5
    decoy_heads: int = 3
    decoy_neurons: int = 2
    carry_position: int | None = None
    d_mlp: int | None = None
    normalization: str | None = "LN"

    def __post_init__(self) -> None:
        if not isinstance(self.digits, int) or not 1 <= self.digits <= 4:
            raise PlantError(f"planted models support 1 to 4 digits, got {self.digits!r}")
        if self.n_heads < 2:
            raise PlantError(f"a planted model needs at least 2 heads per layer, got {self.n_heads}")
        if self.extra_layers < 0 or self.decoy_heads < 0 or self.decoy_neurons < 0:
            raise PlantError("extra_layers, decoy_heads and decoy_neurons must be non-negative")
        if not 0.0 <= self.split_prob <= 1.0:
            raise PlantError(f"split_prob must be in 0..1, got {self.split_prob}")
        from circuitspec.models.card import NORMALIZATIONS

        if self.normalization not in NORMALIZATIONS:
            raise PlantError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")

    @property
    def n_layers(self) -> int:
        return self.digits + 1 + self.extra_layers


class PlantedModel:
    """What every planted circuit offers beside its ground truth: the model's bridge, task and layout
    (the dataclasses below define ``model`` and ``params``)."""

    @property
    def bridge(self):
        return self.model.bridge

    @property
    def task(self):
        return self.model.task

    @property
    def layout(self) -> Layout:
        return Layout(self.params.digits)


@dataclass
class Planted(PlantedModel):
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
    """Build a planted addition model and its ground truth; same (params, seed), same model.

    Four steps, all driven by one seeded generator (in this order, so a model never changes):
    the plan (where every node goes), the residual layout, the MLP units, and their shuffled
    indices in each layer; then the weights and the ground truth follow.
    """
    params = params or PlantParams()
    rng = random.Random(f"circuitspec.planted/{seed}")
    plan = _plan(params, rng)
    dims = _residual(params, plan["htype"])
    by_role: dict[str, list[HeadUse]] = {}
    for u in plan["uses"]:
        by_role.setdefault(u.role, []).append(u)
    placed, d_mlp = _place(params, _units(params, plan, dims, by_role, rng), rng)

    from circuitspec.models.card import Architecture

    lay = Layout(params.digits)
    arch = Architecture(
        n_layers=params.n_layers, n_heads=params.n_heads, d_model=dims.size, d_head=max(lay.n_ctx, params.digits), d_mlp=d_mlp, n_ctx=lay.n_ctx,
        normalization=params.normalization,
    )
    tensors = state_dict(arch, dims, plan["uses"], plan["htype"], placed, params.digits)
    model = _model(arch, tensors, params, seed, name)
    return Planted(model=model, params=params, seed=seed, heads=plan["uses"], neurons=placed, carry_position=plan["V"],
                   **_truth(params.digits, by_role, placed, plan["uses"]))


def _residual(params: PlantParams, htype: dict) -> Dims:
    """The residual stream's named blocks: anchor, sink, token, position, the planted values, heads' private dims."""
    n, n_ctx = params.digits, Layout(params.digits).n_ctx
    dims = Dims()
    for block, width in (("anchor", 2), ("sink", 1), ("tok", D_VOCAB), ("pos", n_ctx), ("val", 1), ("eq", 1), ("sv", n), ("ans", 10), ("junk", 1)):
        dims.add(block, width)
    for layer in range(params.n_layers):
        for h in range(params.n_heads):
            dims.add(f"h{layer}.{h}", n if htype.get((layer, h)) == CARRY else 1)
    return dims


def _units(params: PlantParams, plan: dict, dims: Dims, by_role: dict[str, list[HeadUse]], rng: random.Random) -> list[Neuron]:
    """The MLP units of the SV cascade (at V) and of every answer digit's readout (at P_k), with decoys."""
    n, V, P, R, cascade = params.digits, plan["V"], plan["P"], plan["R"], plan["cascade"]
    units: list[Neuron] = []

    def gated(layer: int, pos: int, reads: dict, bias: float, writes: dict, role: str, gate: int | None = None, cap: bool = False) -> None:
        r = dict(reads)
        r[dims["pos"] + pos] = r.get(dims["pos"] + pos, 0.0) + GATE
        b = bias - GATE
        if gate is not None:
            r[gate] = r.get(gate, 0.0) + GATE
            b -= GATE
        units.append(Neuron(layer, pos, r, b, writes, role, cap=cap))

    def head_sum(uses_of: list[HeadUse]) -> dict:
        """Linear read of s = D + D' from the private dims of a node's heads."""
        return {dims[f"h{u.layer}.{u.head}"]: 2.0 if len(u.targets) == 2 else 1.0 for u in uses_of}  # a split head carries (D + D') / 2

    sv, junk = dims["sv"], dims["junk"]
    for j in range(n):
        s = head_sum(by_role[f"ST{j}"])
        layer = cascade[j]
        # The top carry is read only by A(digits), which cannot tell 1 from more: there a unit
        # with a negative output weight (removing it can only raise sv) is a cap, needed
        # jointly with the others but not alone.
        top = j == n - 1
        for reads, bias, w in step(s, 9.5, 1.0):
            gated(layer, V, reads, bias, {sv + j: w}, f"SV{j}", cap=top and w < 0)
        if j > 0:  # [s_j == 9] * sv_(j-1) = gated([s >= 8.5] - [s >= 9.5])
            for at, sign in ((8.5, 1.0), (9.5, -1.0)):
                for reads, bias, w in step(s, at, sign):
                    gated(layer, V, reads, bias, {sv + j: w}, f"SV{j}", gate=sv + j - 1, cap=top and w < 0)
        for _ in range(params.decoy_neurons):  # thresholds of the same sum, written nowhere useful
            at = rng.choice([4.5, 5.5, 8.5, 9.5, 12.5])
            gated(layer, V, s, -at, {junk: 1.0}, "decoy")

    ans = dims["ans"]
    for k in range(n + 1):
        u: dict[int, float] = head_sum(by_role[f"SA{k}"]) if k < n else {}
        for c in by_role.get(f"C{k}", []):
            u[dims[f"h{c.layer}.{c.head}"] + k - 1] = 1.0
        top = (18 if k < n else 0) + (1 if k > 0 else 0)  # largest value of u
        # one-hot of u mod 10, telescoped: e_0 + sum over m < u of (e_(m+1 mod 10) - e_(m mod 10)).
        # e_0 is left to the unembedding's bias (a '0' wins when no ans dim is set), and the
        # last step needs no upper ramp (u never exceeds top), so every unit is needed.
        for m in range(top):
            out = {ans + (m + 1) % 10: 1.0}
            out[ans + m % 10] = out.get(ans + m % 10, 0.0) - 1.0
            ramps = step(u, m + 0.5, 1.0) if m < top - 1 else [(u, -(m + 0.5 - RAMP), 1.0 / (1.0 - RAMP))]
            for reads, bias, w in ramps:
                gated(R, P[k], reads, bias, {d: w * x for d, x in out.items()}, f"A{k}")
        for _ in range(params.decoy_neurons):
            if u:
                gated(R, P[k], u, -rng.choice([4.5, 9.5, 10.5]), {junk: 1.0}, "decoy")
    return units


def _place(params: PlantParams, units: list[Neuron], rng: random.Random) -> tuple[list[Neuron], int]:
    """The units with their (shuffled) neuron indices, and the MLP width that holds them."""
    per_layer: dict[int, list[Neuron]] = {}
    for unit in units:
        per_layer.setdefault(unit.layer, []).append(unit)
    need = max(len(v) for v in per_layer.values())
    d_mlp = params.d_mlp or 32 * math.ceil(max(64, need * 1.25) / 32)
    if d_mlp < need:
        raise PlantError(f"d_mlp={d_mlp} is too small: a layer needs {need} units")
    placed: list[Neuron] = []
    for layer in range(params.n_layers):
        order = rng.sample(range(d_mlp), d_mlp)
        for i, unit in enumerate(per_layer.get(layer, [])):
            placed.append(Neuron(unit.layer, unit.position, unit.reads, unit.bias, unit.writes, unit.role, order[i], unit.cap))
    return placed, d_mlp


def _truth(n: int, by_role: dict[str, list[HeadUse]], placed: list[Neuron], uses: list[HeadUse]) -> dict[str, Any]:
    """The ground-truth fields of ``Planted``: sites, kinds, variables and impacts of every node, decoys."""
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
    return dict(
        truth=dict(sorted(truth.items(), key=lambda kv: _node_key(kv[0]))),
        mlp_truth=mlp_truth,
        core=core,
        kinds=kinds,
        variables=variables,
        impacts=impacts,
        decoys=decoys,
        layers=layers,
    )


def _site_key(site: str) -> tuple:
    from circuitspec.engine.sites import Site

    return Site.parse(site).sort_key


def _node_key(node: str) -> tuple:
    order = {"SA": 0, "ST": 1, "SV": 2, "C": 3, "A": 4}
    name = node.rstrip("0123456789")
    return (order.get(name, 9), int(node[len(name):] or 0))


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

LEFT_OUT_FAITHFULNESS = 0.95  # the threshold a "one node left out" hypothesis is held to


def left_out_hypothesis(planted: Planted, node: str):
    """The planted algorithm's hypothesis (``testing.recovery.hypothesis_yaml``) lacking ``node``.

    The node's template skips that one binding (``SA{n}`` for n in 0, 2 when ``SA1`` is left out),
    every edge template that reaches it is written out as its other instances, and the hypothesis
    asks for faithfulness >= ``LEFT_OUT_FAITHFULNESS``, so the verdict falls short and its gap report
    must rank the left-out node's site first (``benchmarks/planted.py``).

    The carry nodes SV(n) are stated on the whole MLP (``site: mlp``, as the A(n) nodes are), so
    that the other nodes' circuit is exactly faithful and the left-out node is the only gap: a
    neuron set found by interchange tests can miss the top carry's cap units
    (``tests/test_planted_verify.py``), and mean-ablating those would be a second gap.
    """
    from circuitspec.spec import Hypothesis, expand
    from circuitspec.testing.recovery import hypothesis_yaml

    full = Hypothesis.from_yaml(hypothesis_yaml(planted))
    graph = expand(full, planted.model.card)
    if node not in graph:
        from circuitspec.errors import unknown

        raise unknown("planted node", node, sorted(graph.nodes), PlantError)
    inst = graph.nodes[node]["instance"]
    nodes = []
    for t in full.nodes:
        if t.site == "neurons":  # see the docstring: on the whole MLP, so that the full circuit is faithful
            t = t.model_copy(update={"site": "mlp"})
        if t.id != inst.template:
            nodes.append(t)
            continue
        if len(inst.bindings) != 1:
            raise PlantError(f"cannot leave out one instance of {t.id}: it has {len(inst.bindings)} template variables")
        (var, value), = inst.bindings.items()
        others = [str(b.bindings[var]) for b in (graph.nodes[n]["instance"] for n in graph.nodes) if b.template == t.id and b.id != node]
        if others:
            nodes.append(t.model_copy(update={"for_each": {var: others}}))
    edges = []
    for e in full.edges:
        made = [(u, v) for u, v, data in graph.edges(data=True) if data["flow"] == e.flow]
        if all(node not in uv for uv in made):
            edges.append(e)
            continue
        edges += [e.model_copy(update={"flow": f"{u} -> {v}", "for_each": {}}) for u, v in made if node not in (u, v)]
    checks = full.checks.model_copy(update={"min_faithfulness": LEFT_OUT_FAITHFULNESS})
    lacking = full.model_copy(update={"name": f"{full.name}-without-{node}", "nodes": nodes, "edges": edges, "checks": checks})
    return Hypothesis.from_yaml(lacking.to_yaml())  # validated like a spec file


def is_site_of(planted: Planted, node: str, site: str) -> bool:
    """Whether ``site`` (as a gap report names it) is one of ``node``'s planted sites: one of its
    heads, or the MLP (or the MLP's other neurons) at its neurons' layer and position."""
    from circuitspec.engine.sites import Site

    s = Site.parse(site)
    for planted_site in map(Site.parse, planted.truth[node]):
        if planted_site.kind == "head" and s == planted_site:
            return True
        if planted_site.kind == "neurons" and s.kind in ("mlp", "neurons") and (s.layer, s.position) == (planted_site.layer, planted_site.position):
            return True
    return False
