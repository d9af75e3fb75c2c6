"""Path patching: does a sender's change reach the answer through one receiver alone?

An edge ``A -> B`` of a hypothesis claims that A's variable reaches B's through paths
that avoid every other node's sites. The engine tests it in two steps, for many edges
at once (each edge's pairs are rows of one batch):

1. run the base question with A's sites patched from the source question and every
   other node's sites (``frozen``) held at their values on the base question; record
   B's sites' outputs (head ``z``, MLP ``post``). Unnamed sites on the way (a head that
   moves a value between positions) are free, so they are part of the edge.
2. run the base question again with only B's sites set to the recorded outputs: A's
   change now reaches the answer through B alone, never around it.

Every row restarts from the base question's clean residual stream at the first layer
that can change (earlier layers cannot), and logits are formed at answer-predicting
positions only. A row's result does not depend on the other rows of its batch, so
edges may be batched freely (``benchmarks/edges.py`` checks it against one
TransformerLens-hooked pass per edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from circuitspec.engine.forward import Weights, _heads, _ln, attend, clean_pass, final_logprobs
from circuitspec.engine.sites import Site, check_sites
from circuitspec.errors import EngineError


@dataclass(frozen=True, eq=False)
class PathPatch:
    """One edge test: ``sender`` sites patched from ``source``, ``frozen`` held at ``base``, ``receiver`` recorded.

    ``base`` and ``source`` are aligned question batches ``LongTensor[B, n_ctx]``.
    """

    sender: tuple[Site, ...]
    receiver: tuple[Site, ...]
    frozen: tuple[Site, ...]
    base: torch.Tensor
    source: torch.Tensor
    label: str = ""


@dataclass
class PathOutcomes:
    """Per patch: the answer tokens predicted [B, A] and their log-probs [B, A, V] after step 2."""

    pred: list[torch.Tensor]
    logprobs: list[torch.Tensor]
    passes: int


def _check(engine, p: PathPatch) -> None:
    if not p.sender or not p.receiver:
        raise EngineError(f"path patch {p.label or ''} needs sender and receiver sites")
    sites = [*p.sender, *p.receiver, *p.frozen]
    for s in sites:
        if s.kind == "resid":
            raise EngineError(f"path patching works on head, MLP and neuron sites, not {s}")
    engine._check_tokens(p.base, "path-patch base")
    if p.source.shape != p.base.shape:
        raise EngineError(f"path patch {p.label}: source shape {tuple(p.source.shape)} differs from base {tuple(p.base.shape)}")
    if set(p.sender) & set(p.receiver):
        raise EngineError(f"path patch {p.label}: a site is both sender and receiver")


class _Masks:
    """Per-patch boolean masks over [layer, position, head] (z) and [layer, position, neuron] (post)."""

    def __init__(self, shape, patches: Sequence[PathPatch], which: str, device) -> None:
        n = len(patches)
        self.z = torch.zeros(n, shape.n_layers, shape.n_ctx, shape.n_heads, dtype=torch.bool, device=device)
        self.post = torch.zeros(n, shape.n_layers, shape.n_ctx, shape.d_mlp, dtype=torch.bool, device=device)
        for i, p in enumerate(patches):
            for s in getattr(p, which):
                if s.kind == "head":
                    self.z[i, s.layer, s.position, s.head] = True
                elif s.kind == "mlp":
                    self.post[i, s.layer, s.position] = True
                else:
                    self.post[i, s.layer, s.position, list(s.neurons)] = True
        self.z_layers = {int(l) for l in self.z.any(dim=(0, 2, 3)).nonzero().flatten()}
        self.post_layers = {int(l) for l in self.post.any(dim=(0, 2, 3)).nonzero().flatten()}

    @property
    def layers(self) -> set[int]:
        return self.z_layers | self.post_layers


def _where(mask: torch.Tensor, value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` with ``value`` where ``mask`` ([R, P, H] for z, [R, P, M] for post) is set."""
    return torch.where(mask.unsqueeze(-1) if x.dim() == 4 else mask, value, x)


def _layers(w: Weights, resid: torch.Tensor, first: int, last: int, edit, keep: set[int] | None = None, z_first=None):
    """Layers ``first..last`` over ``resid``; ``edit(layer, 'z' | 'post', act)`` may replace an
    activation. Returns the residual stream after ``last`` and, for layers in ``keep``, the
    (edited) z and post. ``z_first``: the first layer's head outputs, known (its attention is
    not recomputed)."""
    s = w.shape
    n_ctx = resid.shape[1]
    q_pos = torch.arange(n_ctx, device=resid.device)
    kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for layer in range(first, last + 1):
        lw = w.layers[layer]
        if layer == first and z_first is not None:
            z = z_first
        else:
            x = _ln(resid, lw.ln1_w, lw.ln1_b, w.eps)
            q = _heads(F.linear(x, lw.q_w, lw.q_b), s.n_heads)
            k = _heads(F.linear(x, lw.k_w, lw.k_b), s.n_heads)
            v = _heads(F.linear(x, lw.v_w, lw.v_b), s.n_heads)
            z, _ = attend(q, k, v, q_pos, w.scale)
        z = edit(layer, "z", z)
        resid = resid + F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        post = w.act_fn(F.linear(_ln(resid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))
        post = edit(layer, "post", post)
        resid = resid + F.linear(post, lw.out_w, lw.out_b)
        if keep is not None and layer in keep:
            kept[layer] = (z, post)
    return resid, kept


@torch.no_grad()
def path_patch(engine, patches: Sequence[PathPatch]) -> PathOutcomes:
    """Run every patch's two steps (see the module docstring), many patches per pass.

    Rows (patch x question) are cut into chunks that fit the engine's memory budget.
    """
    patches = list(patches)
    for p in patches:
        _check(engine, p)
        check_sites((*p.sender, *p.receiver, *p.frozen), engine.shape)
    w, dev = engine.weights, engine.device
    if not patches:
        return PathOutcomes(pred=[], logprobs=[], passes=0)
    send, freeze, recv = (_Masks(engine.shape, patches, which, dev) for which in ("sender", "frozen", "receiver"))
    row_patch = torch.cat([torch.full((len(p.base),), i, dtype=torch.long) for i, p in enumerate(patches)]).to(dev)
    base = torch.cat([p.base for p in patches]).long().to(dev)
    source = torch.cat([p.source for p in patches]).long().to(dev)
    n_rows = base.shape[0]
    chunk = max(1, engine.memory_budget // (2 * engine._row_bytes()))
    lps, passes = [], 0
    for r0 in range(0, n_rows, chunk):
        rows = slice(r0, min(n_rows, r0 + chunk))
        lps.append(_two_steps(engine, base[rows], source[rows], row_patch[rows], send, freeze, recv))
        passes += 2
    lp = torch.cat(lps)
    sizes = [len(p.base) for p in patches]
    logprobs = list(lp.split(sizes))
    return PathOutcomes(pred=[x.argmax(-1) for x in logprobs], logprobs=logprobs, passes=passes)


def _two_steps(engine, base, source, row_patch, send: _Masks, freeze: _Masks, recv: _Masks) -> torch.Tensor:
    """Log-probs [R, A, V] of step 2 for one chunk of rows."""
    w = engine.weights
    _, clean = clean_pass(w, base, [], capture=("resid_pre", "z", "post"))
    _, src = clean_pass(w, source, [], capture=("z", "post"))
    masks = {
        name: {"z": m.z[row_patch], "post": m.post[row_patch]} for name, m in (("send", send), ("freeze", freeze), ("recv", recv))
    }

    def step1(layer: int, what: str, act: torch.Tensor) -> torch.Tensor:
        act = _where(masks["send"][what][:, layer], src[what][layer], act)
        return _where(masks["freeze"][what][:, layer], clean[what][layer], act)

    first = min(send.layers)
    last = max(recv.layers)
    if first > last:
        raise EngineError("every receiver site runs before its sender: nothing can flow")
    _, recorded = _layers(w, clean["resid_pre"][first], first, last, step1, keep=recv.layers)

    def step2(layer: int, what: str, act: torch.Tensor) -> torch.Tensor:
        if layer not in recorded:
            return act
        return _where(masks["recv"][what][:, layer], recorded[layer][0 if what == "z" else 1], act)

    start = min(recv.layers)
    known = None if start in recv.z_layers else clean["z"][start]  # only MLPs set there: its attention is the base run's
    resid, _ = _layers(w, clean["resid_pre"][start], start, w.shape.n_layers - 1, step2, z_first=known)
    return final_logprobs(w, resid[:, engine.pred_positions])
