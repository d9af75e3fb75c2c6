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

With ``route="answer"`` the claim is weaker: A's change reaches the answer through B *or
around it* (the last MLP and the direct path to the logits), still avoiding the other
nodes. Then step 1 runs to the logits and step 2 is not run.

Every row restarts from the base question's clean residual stream at the first layer
that can change (earlier layers cannot), and logits are formed at answer-predicting
positions only. A row's result does not depend on the other rows of its batch, so
edges may be batched freely (``benchmarks/edges.py`` checks it against one
TransformerLens-hooked pass per edge). On the engine's hooked path (``engine.hooked``) both
steps are whole passes of the bridge with the same edits at its hook points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from circuitspec.engine import hooked
from circuitspec.engine.forward import Weights, _heads, _ln, attend, final_logprobs
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
    route: str = "target"  # "target": through the receiver alone (two steps); "answer": step 1's logits


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
    if p.route not in ("target", "answer"):
        raise EngineError(f"path patch {p.label}: unknown route {p.route!r}", hint="route is 'target' or 'answer'")


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


def _layers(w: Weights, resid: torch.Tensor, first: int, last: int, edit, keep: set[int] | None = None, z_first=None, out_at=None):
    """Layers ``first..last`` over ``resid``; ``edit(layer, 'z' | 'post', act, pos)`` may replace an
    activation (``pos``: the positions ``act`` holds, None: all). Returns the residual stream after
    ``last`` and, for layers in ``keep``, the (edited) z and post. ``z_first``: the first layer's
    head outputs, known (its attention is not recomputed). ``out_at``: the last layer computes its
    queries, outputs and MLP at these positions only (keys and values everywhere), and the
    residual stream returned holds only them: what the log-probs there need."""
    s = w.shape
    n_ctx = resid.shape[1]
    q_pos = torch.arange(n_ctx, device=resid.device)
    kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for layer in range(first, last + 1):
        lw = w.layers[layer]
        at = torch.as_tensor(out_at, dtype=torch.long, device=resid.device) if out_at is not None and layer == last else None
        if layer == first and z_first is not None:
            z = z_first if at is None else z_first[:, at]
        else:
            x = _ln(resid, lw.ln1_w, lw.ln1_b, w.eps)
            q = _heads(F.linear(x if at is None else x[:, at], lw.q_w, lw.q_b), s.n_heads)
            k = _heads(F.linear(x, lw.k_w, lw.k_b), s.n_heads)
            v = _heads(F.linear(x, lw.v_w, lw.v_b), s.n_heads)
            z, _ = attend(q, k, v, q_pos if at is None else at, w.scale)
        z = edit(layer, "z", z, at)
        resid = (resid if at is None else resid[:, at]) + F.linear(z.reshape(*z.shape[:2], -1), lw.o_w, lw.o_b)
        post = w.act_fn(F.linear(_ln(resid, lw.ln2_w, lw.ln2_b, w.eps), lw.in_w, lw.in_b))
        post = edit(layer, "post", post, at)
        resid = resid + F.linear(post, lw.out_w, lw.out_b)
        if keep is not None and layer in keep:
            kept[layer] = (z, post)
    return resid, kept


@torch.no_grad()
def path_patch(engine, patches: Sequence[PathPatch]) -> PathOutcomes:
    """Run every patch's two steps (see the module docstring), many patches per pass.

    Patches that share their question tensors (the edges of one source variable) share the clean
    runs of the base and source questions, and are tiled along the batch (patch x question) in
    chunks that fit the engine's memory budget, as ``Engine.run`` tiles interventions.
    """
    patches = list(patches)
    for p in patches:
        _check(engine, p)
        check_sites((*p.sender, *p.receiver, *p.frozen), engine.shape)
    if not patches:
        return PathOutcomes(pred=[], logprobs=[], passes=0)
    w, dev = engine.weights, engine.device
    groups: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(patches):
        groups.setdefault((id(p.base), id(p.source), p.route), []).append(i)
    per_chunk = max(1, engine.memory_budget // (4 * engine._row_bytes()))
    max_rows = max(1, engine.memory_budget // (2 * engine._row_bytes()))
    parts: list[list[torch.Tensor]] = [[] for _ in patches]
    passes = 0
    for (_, _, route), members in groups.items():
        base, source = patches[members[0]].base.long().to(dev), patches[members[0]].source.long().to(dev)
        top = max(s.layer for i in members for s in patches[i].sender)
        for b0 in range(0, base.shape[0], per_chunk):
            b1 = min(base.shape[0], b0 + per_chunk)
            # the base's clean run (z, post, resid_pre: what an interchange source needs) is kept in
            # the engine's recall, where the edges of other routes and later calls on these pairs find it
            _, clean = engine._recalled("sources", base[b0:b1])
            if w is None:
                _, src = engine._recalled("sources", source[b0:b1])
            else:  # the source's only up to its last sender layer
                embedded = F.embedding(source[b0:b1], w.embed) + w.pos[: source.shape[1]]
                _, kept = _layers(w, embedded, 0, top, lambda layer, what, act, pos=None: act, keep=set(range(top + 1)))
                src = {"z": [kept[l][0] for l in range(top + 1)], "post": [kept[l][1] for l in range(top + 1)]}
            per_pass = max(1, max_rows // (b1 - b0))
            for k in range(0, len(members), per_pass):
                idx = members[k : k + per_pass]
                chosen = [patches[i] for i in idx]
                masks = {which: _Masks(engine.shape, chosen, which, dev) for which in ("sender", "frozen", "receiver")}
                if route == "answer":
                    lp = _one_step(engine, base[b0:b1], clean, src, masks, len(idx))
                    passes += 1
                elif w is None:
                    lp = _hooked_two_steps(engine, base[b0:b1], clean, src, masks, len(idx))
                    passes += 2
                else:
                    lp = _two_steps(engine, clean, src, masks, len(idx))
                    passes += 2
                for j, i in enumerate(idx):
                    parts[i].append(lp[j])
    logprobs = [torch.cat(x) for x in parts]
    return PathOutcomes(pred=[x.argmax(-1) for x in logprobs], logprobs=logprobs, passes=passes)


def _tile(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.repeat(n, *([1] * (t.dim() - 1)))


def _set(mask: torch.Tensor, value: torch.Tensor, act: torch.Tensor, n: int, pos=None) -> torch.Tensor:
    """``act`` [n * Bc, P, ...] with ``value`` ([1 | n, Bc, n_ctx, ...]) where the per-patch ``mask``
    ([n, n_ctx, H] for z, [n, n_ctx, M] for post) is set; ``pos``: the positions ``act`` holds (None: all)."""
    if pos is not None:
        mask, value = mask[:, pos], value[:, :, pos]
    shaped = act.view(n, -1, *act.shape[1:])
    m = mask[:, None, ..., None] if act.dim() == 4 else mask[:, None]
    return torch.where(m, value, shaped).view(act.shape)


def _step1(masks: dict[str, _Masks], clean: dict, src: dict, n: int):
    """Step 1's edit: senders from the source run, frozen sites at the base run's values."""
    send, freeze = masks["sender"], masks["frozen"]

    def edit(layer: int, what: str, act: torch.Tensor, pos=None) -> torch.Tensor:
        m = send.z if what == "z" else send.post
        if layer in (send.z_layers if what == "z" else send.post_layers):
            act = _set(m[:, layer], src[what][layer].unsqueeze(0), act, n, pos)
        if layer in (freeze.z_layers if what == "z" else freeze.post_layers):
            act = _set((freeze.z if what == "z" else freeze.post)[:, layer], clean[what][layer].unsqueeze(0), act, n, pos)
        return act

    return edit


def _step2(recv: _Masks, recorded: dict[tuple[int, str], torch.Tensor], n: int):
    """Step 2's edit: only the receivers, set to their outputs recorded in step 1."""

    def edit(layer: int, what: str, act: torch.Tensor, pos=None) -> torch.Tensor:
        if layer not in (recv.z_layers if what == "z" else recv.post_layers):
            return act
        value = recorded[(layer, what)]
        return _set((recv.z if what == "z" else recv.post)[:, layer], value.view(n, -1, *value.shape[1:]), act, n, pos)

    return edit


def _first_last(masks: dict[str, _Masks]) -> tuple[int, int]:
    first, last = min(masks["sender"].layers), max(masks["receiver"].layers)
    if first > last:
        raise EngineError("every receiver site runs before its sender: nothing can flow")
    return first, last


def _hooked_two_steps(engine, base: torch.Tensor, clean: dict, src: dict, masks: dict[str, _Masks], n: int) -> torch.Tensor:
    """``_two_steps`` as two whole hooked passes of the bridge over the tiled base questions."""
    _first_last(masks)
    recv = masks["receiver"]
    step1 = _step1(masks, clean, src, n)
    recorded: dict[tuple[int, str], torch.Tensor] = {}

    def record(layer: int, what: str, act: torch.Tensor) -> torch.Tensor:
        act = step1(layer, what, act)
        if layer in (recv.z_layers if what == "z" else recv.post_layers):
            recorded[(layer, what)] = act
        return act

    everywhere = set(range(engine.shape.n_layers))
    edited = {"z": everywhere, "post": everywhere if hooked.has_mlp(engine.bridge) else set()}
    tiled = base.repeat(n, 1)
    hooked.run_with_edits(engine.bridge, tiled, record, edited, [])
    lp = hooked.run_with_edits(engine.bridge, tiled, _step2(recv, recorded, n), {"z": recv.z_layers, "post": recv.post_layers}, engine.pred_positions)
    return lp.view(n, -1, *lp.shape[1:])


def _one_step(engine, base: torch.Tensor, clean: dict, src: dict, masks: dict[str, _Masks], n: int) -> torch.Tensor:
    """Log-probs [n, Bc, A, V] of step 1 run to the logits (``route="answer"``)."""
    _first_last(masks)
    step1 = _step1(masks, clean, src, n)
    w = engine.weights
    if w is None:
        everywhere = set(range(engine.shape.n_layers))
        edited = {"z": everywhere, "post": everywhere if hooked.has_mlp(engine.bridge) else set()}
        lp = hooked.run_with_edits(engine.bridge, base.repeat(n, 1), step1, edited, engine.pred_positions)
    else:
        first = min(masks["sender"].layers)
        resid, _ = _layers(w, _tile(clean["resid_pre"][first], n), first, w.shape.n_layers - 1, step1, out_at=engine.pred_positions)
        lp = final_logprobs(w, resid)
    return lp.view(n, -1, *lp.shape[1:])


def _two_steps(engine, clean: dict, src: dict, masks: dict[str, _Masks], n: int) -> torch.Tensor:
    """Log-probs [n, Bc, A, V] of step 2 for ``n`` patches over one chunk of Bc questions."""
    w = engine.weights
    recv = masks["receiver"]
    first, last = _first_last(masks)
    final = last == w.shape.n_layers - 1  # receivers there matter at the answer positions only, as in step 2
    at = engine.pred_positions if final else None
    _, kept = _layers(w, _tile(clean["resid_pre"][first], n), first, last, _step1(masks, clean, src, n), keep=recv.layers, out_at=at)
    recorded = {(layer, what): zp[i] for layer, zp in kept.items() for i, what in enumerate(("z", "post"))}
    if final:  # back to every position (the others are never read)
        for what in ("z", "post"):
            t = recorded[(last, what)]
            recorded[(last, what)] = t.new_zeros((t.shape[0], w.shape.n_ctx, *t.shape[2:])).index_copy_(1, torch.as_tensor(at, device=t.device), t)
    step2 = _step2(recv, recorded, n)

    start = min(recv.layers)
    known = None if start in recv.z_layers else _tile(clean["z"][start], n)  # only MLPs set there: its attention is the base run's
    resid, _ = _layers(w, _tile(clean["resid_pre"][start], n), start, w.shape.n_layers - 1, step2, z_first=known, out_at=engine.pred_positions)
    lp = final_logprobs(w, resid)
    return lp.view(n, -1, *lp.shape[1:])
