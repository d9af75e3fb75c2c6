"""The engine: many interventions in few batched forward passes.

``Engine(model)`` wraps a model (a ``circuitspec.models.Model`` or a bridge plus a task);
``engine.run(tokens, interventions)`` returns per-intervention, per-question,
per-answer-token ``Outcomes``.

How it is fast (see ARCHITECTURE.md, "Performance notes"):

- one clean pass per chunk of questions caches the residual stream, keys, values and
  head outputs; every intervention restarts from there, and a later run on the same
  questions or sources recalls it (``engine.recall``, ``circuitspec.engine.recall``);
- interventions are grouped by their ``Plan`` (start layer, positions to recompute):
  an intervention at layer L, position p cannot change earlier layers or positions, so
  only the suffix is recomputed (in layer L only the site positions themselves);
- a group's interventions are tiled along the batch (intervention x question) with
  per-row masks at the patch points, chunked to the memory budget;
- logits are formed at answer-predicting positions only, and only where they can change.

That is the fast path (``engine.forward``), for the family it implements. Any other model
the bridge runs takes the exact fallback (``engine.hooked``): the same batched rows and masks
through TransformerLens's own hooks, whole passes instead of suffixes. ``Engine.path`` says
which one runs ("fast" or "hooked"), and ``Engine.path_reason`` why the fast one could not.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from circuitspec.engine import hooked
from circuitspec.engine.forward import CAPTURE_PATCHED, LayerPatch, Plan, Weights, _apply, clean_pass, make_plan, patched_pass
from circuitspec.engine.interventions import Intervention
from circuitspec.engine.recall import CleanPasses
from circuitspec.engine.sites import Site
from circuitspec.engine.stats import MeanStats
from circuitspec.errors import EngineError, unknown
from circuitspec.heap import keep_freed_memory
from circuitspec.vocabulary import ModelShape

log = logging.getLogger(__name__)

ENGINE_VERSION = "1"

# what Engine.run reads of the clean pass over its questions, and over an interchange source, per path
_RECALLED = {
    "fast": {"questions": CAPTURE_PATCHED, "sources": ("z", "post", "resid_pre")},
    "hooked": {"questions": (), "sources": ("z", "post", "resid_pre")},
}
PATHS = ("auto", "fast", "hooked")


def mix_seed(*parts: Any) -> int:
    """A 63-bit seed derived from the parts (stable across runs and platforms)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass
class CleanOutcomes:
    """The unpatched model on the evaluated questions."""

    pred: torch.Tensor  # [B, A] argmax token at each answer position
    correct: torch.Tensor  # [B, A] bool
    logprob: torch.Tensor  # [B, A] log-prob of the gold token
    logprobs: torch.Tensor  # [B, A, V]

    @property
    def question_correct(self) -> torch.Tensor:
        return self.correct.all(dim=-1)


@dataclass
class Outcomes:
    """Results of ``Engine.run``: index [i, b, a] = intervention i, question b, answer token a."""

    interventions: list[Intervention]
    tokens: torch.Tensor  # [B, n_ctx]
    gold: torch.Tensor  # [B, A]
    pred: torch.Tensor  # [I, B, A]
    correct: torch.Tensor  # [I, B, A] bool
    logprob: torch.Tensor  # [I, B, A]
    clean: CleanOutcomes
    answer_labels: list[str]
    logprobs: torch.Tensor | None = None  # [I, B, A, V] when run with keep_logprobs=True
    targets: torch.Tensor | None = None  # [I, B, A] when run with targets
    target_logprob: torch.Tensor | None = None  # [I, B, A]
    target_match: torch.Tensor | None = None  # [I, B, A] bool: pred == targets
    reference_overlap: int = 0  # evaluated questions that are also reference questions
    stats: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.pred.shape[0]

    @property
    def question_correct(self) -> torch.Tensor:
        """[I, B]: every answer token right."""
        return self.correct.all(dim=-1)

    @property
    def failure_rate(self) -> torch.Tensor:
        """[I]: share of questions with at least one wrong answer token."""
        return 1.0 - self.question_correct.float().mean(dim=-1)

    @property
    def token_failure_rate(self) -> torch.Tensor:
        """[I, A]: share of questions whose answer token a is wrong."""
        return 1.0 - self.correct.float().mean(dim=1)

    def logprob_of(self, targets: torch.Tensor) -> torch.Tensor:
        """[I, B, A] log-probs of ``targets`` ([I, B, A] or [B, A]); needs ``keep_logprobs=True``."""
        if self.logprobs is None:
            raise EngineError(
                "these outcomes kept no full log-probs",
                hint="run with keep_logprobs=True, or pass targets= to Engine.run",
            )
        t = _expand_targets(targets, self.pred.shape).to(self.logprobs.device)
        return self.logprobs.gather(-1, t.unsqueeze(-1)).squeeze(-1)

    def matches(self, targets: torch.Tensor) -> torch.Tensor:
        """[I, B, A] bool: prediction equals ``targets`` ([I, B, A] or [B, A])."""
        return self.pred == _expand_targets(targets, self.pred.shape).to(self.pred.device)


def _expand_targets(targets: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    t = torch.as_tensor(targets).long()
    if t.shape == shape[1:]:
        return t.unsqueeze(0).expand(shape)
    if t.shape != shape:
        raise EngineError(f"targets must have shape [I, B, A] = {list(shape)} or [B, A], got {list(t.shape)}")
    return t


class Engine:
    """Runs interventions on one model for one task. See the module docstring."""

    def __init__(
        self,
        model: Any,
        task: Any = None,
        *,
        seed: int = 0,
        reference_size: int = 512,
        memory_budget: int = 128 * 2**20,
        recall_budget: int = 512 * 2**20,
        name: str | None = None,
        path: str = "auto",
    ) -> None:
        """``path``: "auto" runs the fast path where it supports the model and the hooked
        fallback elsewhere; "fast" refuses other models; "hooked" always takes the fallback."""
        if path not in PATHS:
            raise unknown("engine path", path, PATHS, EngineError)
        bridge = getattr(model, "bridge", model)
        task = task if task is not None else getattr(model, "task", None)
        if task is None:
            raise EngineError("the engine needs a task", hint="Engine(bridge, task) or Engine(model) for a loaded model")
        if not hasattr(bridge, "cfg") or not hasattr(bridge, "state_dict"):
            raise EngineError(f"expected a model or a TransformerBridge, got {type(model).__name__}")
        self.bridge = bridge
        self.task = task
        self.name = name or getattr(getattr(model, "card", None), "name", None) or "model"
        self.seed = int(seed)
        if reference_size < 1:
            raise EngineError(f"reference_size must be at least 1, got {reference_size}")
        self.reference_size = int(reference_size)
        self.memory_budget = int(memory_budget)
        self.recall = CleanPasses(recall_budget)  # clean passes of recent runs' questions and sources
        keep_freed_memory()  # passes reuse freed activation memory instead of faulting in new pages
        try:
            self.shape = ModelShape.from_config(bridge.cfg, op=task.op, digits=task.layout.digits)
        except AttributeError as err:
            raise EngineError(f"cannot read a model shape from {type(bridge).__name__}: {err}") from None
        self.weights: Weights | None = None
        self.path, self.path_reason = "hooked", "the hooked path was asked for"
        if path != "hooked":
            try:
                self.weights = Weights.from_bridge(bridge, self.shape)
                self.path, self.path_reason = "fast", ""
            except EngineError as err:
                if path == "fast":
                    raise
                self.path_reason = err.message
                log.info("%s: hooked engine path (%s)", self.name, err.message)
        self.state = {k: v.detach() for k, v in bridge.state_dict().items()}
        self.d_vocab = int(bridge.cfg.d_vocab)
        layout = task.layout
        if layout.n_ctx != self.shape.n_ctx:
            raise EngineError(f"the task's context ({layout.n_ctx} tokens) differs from the model's ({self.shape.n_ctx})")
        self.layout = layout
        self.answer_positions: list[int] = list(layout.answer_positions)
        self.pred_positions: list[int] = [p - 1 for p in self.answer_positions]
        self.answer_labels: list[str] = list(layout.answer_labels)
        self.device = next(iter(self.state.values())).device
        self._reference: torch.Tensor | None = None
        self._reference_keys: set[bytes] | None = None
        self._stats: MeanStats | None = None
        self._hash: str | None = None

    # -- reference questions and statistics -----------------------------------------------
    @property
    def reference(self) -> torch.Tensor:
        """The seeded reference questions (mean statistics, resample sources)."""
        if self._reference is None:
            g = torch.Generator().manual_seed(mix_seed("reference", self.seed))
            ref = self.task.generate(self.reference_size, g)
            self._reference = ref.to(self.device)
            self._reference_keys = {bytes(row.tolist()) for row in ref.cpu().to(torch.uint8)}
        return self._reference

    @property
    def stats(self) -> MeanStats:
        if self._stats is None:
            dtype = next(t.dtype for t in self.state.values() if t.is_floating_point())
            self._stats = MeanStats.compute(self.clean_pass, self.reference, dtype)
        return self._stats

    def reference_overlap(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B] bool: which of these questions are reference questions."""
        _ = self.reference
        keys = self._reference_keys or set()
        return torch.tensor([bytes(r.tolist()) in keys for r in tokens.cpu().to(torch.uint8)], dtype=torch.bool)

    def questions(self, n: int, *, seed: int = 0, cls: str | None = None) -> torch.Tensor:
        """``n`` seeded questions (of class ``cls``) that are not reference questions."""
        g = torch.Generator().manual_seed(mix_seed("questions", self.seed, seed, cls))
        out: list[torch.Tensor] = []
        have = 0
        for _ in range(100):
            batch = self.task.generate(max(n - have, 8), g, cls=cls) if cls else self.task.generate(max(n - have, 8), g)
            batch = batch[~self.reference_overlap(batch)]
            out.append(batch)
            have += batch.shape[0]
            if have >= n:
                break
        else:
            raise EngineError(f"could not draw {n} questions outside the reference set", hint="lower reference_size")
        return torch.cat(out)[:n].to(self.device)

    def sources(self, intervention: Intervention, n: int) -> torch.Tensor | None:
        """The source questions a patching intervention reads from, for ``n`` evaluated rows."""
        if intervention.kind == "interchange":
            return intervention.source.to(self.device)
        if intervention.kind == "resample":
            g = torch.Generator().manual_seed(mix_seed("resample", self.seed, intervention.seed, n))
            idx = torch.randint(0, self.reference.shape[0], (n,), generator=g)
            return self.reference[idx.to(self.device)]
        return None

    def answers_reached(self, site: Site) -> set[str]:
        """The answer labels whose prediction ``site`` can change: a last-layer site only the one
        predicted at its own position (no later layer moves its write on), an earlier one those at or after it."""
        last = self.shape.n_layers - 1
        return {
            label
            for p, label in zip(self.pred_positions, self.answer_labels)
            if p == site.position or (p > site.position and site.layer < last)
        }

    def sites(self, kinds: Sequence[str] = ("head", "mlp"), positions=None, layers=None) -> list[Site]:
        """Every head and MLP site of the model (or the given kinds / positions / layers), sorted."""
        from circuitspec.engine.sites import all_sites

        return all_sites(self.shape, kinds=kinds, positions=positions, layers=layers)

    def facts(self, params: Any = None, *, cache_dir: Any = None, use_cache: bool = True, progress: Any = None):
        """Facts about every head and MLP site (``circuitspec.engine.facts``), from the on-disk
        cache when this model, task, engine and ``params`` were seen before (default params:
        ``FactsParams.preset(seed)``, the ones ``verify`` and ``scan`` use)."""
        from circuitspec.engine.cache import JsonCache
        from circuitspec.engine.facts import load_or_compute

        return load_or_compute(self, params, cache=JsonCache(cache_dir), use_cache=use_cache, progress=progress)

    # -- identity of the model for caching ------------------------------------------------
    def weights_hash(self) -> str:
        if self._hash is None:
            h = hashlib.sha256()
            for key in sorted(self.state):
                t = self.state[key].detach().to("cpu").contiguous()
                h.update(key.encode())
                h.update(str(t.dtype).encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(t.numpy().tobytes())
            self._hash = h.hexdigest()
        return self._hash

    # -- running ---------------------------------------------------------------------------
    def clean_pass(
        self, tokens: torch.Tensor, pred_positions: list[int] | None, capture: tuple[str, ...] = (), track: bool = False,
        answers_only: bool | None = None,
    ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """The clean model's log-probs and activations (``forward.clean_pass``), on this engine's path.
        The hooked path captures resid_pre, z, pattern, attn_out, resid_mid, post and mlp_out, every
        layer at every position (``answers_only`` is the fast path's)."""
        if self.weights is not None:
            return clean_pass(self.weights, tokens, pred_positions, capture=capture, track=track, answers_only=answers_only)
        return hooked.clean_pass(self.bridge, tokens, pred_positions, capture=capture, track=track)

    def _check_tokens(self, tokens: torch.Tensor, what: str = "tokens") -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != self.shape.n_ctx:
            got = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise EngineError(f"{what} must be a LongTensor [B, {self.shape.n_ctx}], got {got}")
        if tokens.shape[0] == 0:
            raise EngineError(f"{what} holds no questions")
        return tokens.long().to(self.device)

    def _row_bytes(self) -> int:
        s = self.shape
        per_pos = 6 * s.d_model + 6 * s.n_heads * s.d_head + 3 * s.d_mlp + 2 * s.n_heads * s.n_ctx
        return 4 * s.n_ctx * per_pos

    def answered(self, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """``tokens`` with their answer tokens replaced by ``answers`` [B, n_answer].

        An intervention is judged on the answer it predicts, and the model reads its own earlier
        answer tokens (the emitted sign, a digit) when it predicts the next: run on the predicted
        answer, each position sees what the model would have written had it followed the
        prediction so far, as when it generates. On the base's own answer a sign flipped by the
        intervention would still be read as the old sign by every digit after it.
        """
        tokens = self._check_tokens(tokens)
        if answers.shape != (tokens.shape[0], len(self.answer_positions)):
            raise EngineError(f"answers must be [{tokens.shape[0]}, {len(self.answer_positions)}], got {list(answers.shape)}")
        out = tokens.clone()
        out[:, self.answer_positions] = answers.to(out.device, out.dtype)
        return out

    @torch.no_grad()
    def clean(self, tokens: torch.Tensor, *, recall: str | None = None) -> CleanOutcomes:
        """The clean model on ``tokens``. ``recall="questions"`` or ``"sources"``: run the pass a
        later ``run`` on these rows needs (as its questions, or as interchange sources) and keep
        it in ``self.recall``; the outcomes are the same bits either way."""
        tokens = self._check_tokens(tokens)
        gold = self.task.answers(tokens).long().to(self.device)
        chunks = []
        step = self._chunk_size(tokens.shape[0])
        for start in range(0, tokens.shape[0], step):
            chunk = tokens[start : start + step]
            if recall is None:
                lp, _ = self.clean_pass(chunk, self.pred_positions)
            else:
                lp, _ = self._recalled(recall, chunk)
            chunks.append(lp)
        return self._clean_outcomes(torch.cat(chunks), gold)

    def _recalled(self, kind: str, chunk: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """The clean pass ``run`` reads for a chunk of its questions or of a source, from the recall when kept."""
        capture = _RECALLED[self.path].get(kind)
        if capture is None:
            raise EngineError(f"recall must be 'questions' or 'sources', got {kind!r}")
        # the last layer at answer positions only: the patched pass and path patching read nothing else of it
        return self.recall.get(kind, chunk, lambda: self.clean_pass(chunk, self.pred_positions, capture=capture, answers_only=True))

    def _clean_outcomes(self, lp: torch.Tensor, gold: torch.Tensor) -> CleanOutcomes:
        pred = lp.argmax(-1)
        return CleanOutcomes(pred=pred, correct=pred == gold, logprob=lp.gather(-1, gold.unsqueeze(-1)).squeeze(-1), logprobs=lp)

    def _chunk_size(self, n: int) -> int:
        # the clean cache of a question is about a third of a patched row's working set
        return max(1, min(n, self.memory_budget // (4 * self._row_bytes())))

    @torch.no_grad()
    def run(
        self,
        tokens: torch.Tensor,
        interventions: Sequence[Intervention],
        *,
        targets: torch.Tensor | None = None,
        keep_logprobs: bool = False,
    ) -> Outcomes:
        """Apply each intervention to every question; see ``Outcomes``.

        One function on purpose (over 80 lines): it is the engine's hot loop, and the chunking,
        the shared clean pass and the per-chunk patch plans read top to bottom as one data flow.
        """
        tokens = self._check_tokens(tokens)
        interventions = list(interventions)
        for iv in interventions:
            if not isinstance(iv, Intervention):
                raise EngineError(f"expected Intervention objects, got {type(iv).__name__}")
            iv.checked(self.shape)
        n_b, n_a, n_i = tokens.shape[0], len(self.answer_positions), len(interventions)
        gold = self.task.answers(tokens).long().to(self.device)
        tgt = None if targets is None else _expand_targets(targets, torch.Size((n_i, n_b, n_a))).to(self.device)
        overlap = int(self.reference_overlap(tokens).sum())
        if overlap:
            log.warning("%d evaluated question(s) are also reference questions (mean statistics / resampling)", overlap)

        # Sources: one clean pass per distinct source tensor (by content).
        source_of: list[str | None] = []
        source_tokens: dict[str, torch.Tensor] = {}
        for iv in interventions:
            src = self.sources(iv, n_b)
            if src is None:
                source_of.append(None)
                continue
            src = self._check_tokens(src, "interchange source")
            if src.shape[0] != n_b:
                raise EngineError(f"interchange source has {src.shape[0]} rows for {n_b} questions")
            key = hashlib.sha256(src.cpu().numpy().tobytes()).hexdigest()
            source_tokens.setdefault(key, src)
            source_of.append(key)

        plans: list[Plan] = [
            make_plan([(s.layer, s.position) for s in iv.sites], self.shape.n_layers, self.shape.n_ctx, self.pred_positions)
            for iv in interventions
        ]
        groups: dict[tuple, list[int]] = {}
        for i, plan in enumerate(plans):
            if not plan.is_noop:
                groups.setdefault((plan.start, plan.compute) if self.weights is not None else (), []).append(i)

        pred = torch.empty(n_i, n_b, n_a, dtype=torch.long, device=self.device)
        logprob = torch.empty(n_i, n_b, n_a, device=self.device)
        full = torch.empty(n_i, n_b, n_a, self.d_vocab, device=self.device) if keep_logprobs else None
        t_lp = torch.empty(n_i, n_b, n_a, device=self.device) if tgt is not None else None

        bc = self._chunk_size(n_b)
        max_rows = max(1, self.memory_budget // self._row_bytes())
        clean_lp_parts = []
        passes = 0
        for b0 in range(0, n_b, bc):
            b1 = min(n_b, b0 + bc)
            chunk = tokens[b0:b1]
            clean_lp, cache = self._recalled("questions", chunk)
            clean_lp_parts.append(clean_lp)
            src_cache = {key: self._recalled("sources", src[b0:b1])[1] for key, src in source_tokens.items()}

            def store(idx: list[int], lp: torch.Tensor) -> None:
                lp = lp.view(len(idx), b1 - b0, n_a, -1)
                ii = torch.tensor(idx, device=self.device)
                pred[ii, b0:b1] = lp.argmax(-1)
                logprob[ii, b0:b1] = lp.gather(-1, gold[b0:b1].unsqueeze(0).expand(len(idx), -1, -1).unsqueeze(-1)).squeeze(-1)
                if full is not None:
                    full[ii, b0:b1] = lp
                if t_lp is not None:
                    t_lp[ii, b0:b1] = lp.gather(-1, tgt[ii, b0:b1].unsqueeze(-1)).squeeze(-1)

            noop = [i for i, plan in enumerate(plans) if plan.is_noop]
            if noop:
                store(noop, clean_lp.unsqueeze(0).expand(len(noop), -1, -1, -1).reshape(-1, n_a, clean_lp.shape[-1]))
            per_pass = max(1, max_rows // (b1 - b0))
            memo: dict = {}  # per-question work shared by the passes over this chunk
            for members in groups.values():
                plan = plans[members[0]] if self.weights is not None else self._whole_plan()
                for k in range(0, len(members), per_pass):
                    idx = members[k : k + per_pass]
                    patches = self._patches(plan, [interventions[i] for i in idx], [source_of[i] for i in idx], src_cache, b0, b1)
                    if self.weights is not None:
                        lp = patched_pass(self.weights, plan, cache, len(idx), patches, self.pred_positions, clean_lp, memo)
                    else:
                        lp = self._hooked_pass(chunk, len(idx), patches)
                    passes += 1
                    store(idx, lp)

        clean = self._clean_outcomes(torch.cat(clean_lp_parts), gold)
        out = Outcomes(
            interventions=interventions,
            tokens=tokens,
            gold=gold,
            pred=pred,
            correct=pred == gold.unsqueeze(0),
            logprob=logprob,
            clean=clean,
            answer_labels=self.answer_labels,
            logprobs=full,
            targets=tgt,
            target_logprob=t_lp,
            target_match=None if tgt is None else pred == tgt,
            reference_overlap=overlap,
            stats={"passes": float(passes), "groups": float(len(groups))},
        )
        return out

    def _whole_plan(self) -> Plan:
        """The hooked path's plan: the bridge recomputes every layer at every position."""
        every = tuple(range(self.shape.n_ctx))
        return Plan(0, (every,) * self.shape.n_layers, ((),) + (every,) * (self.shape.n_layers - 1))

    def _hooked_pass(self, chunk: torch.Tensor, n_int: int, patches: list[LayerPatch]) -> torch.Tensor:
        """Log-probs [n_int * Bc, P, V] of ``n_int`` interventions over a chunk of questions,
        tiled intervention-major along the batch, with the same per-row masks as the fast path."""
        where = {"z": "head", "post": "post", "resid": "resid"}
        layers = {what: {l for l, p in enumerate(patches) if getattr(p, attr) is not None} for what, attr in where.items()}

        def edit(layer: int, what: str, act: torch.Tensor) -> torch.Tensor:
            return _apply(act, getattr(patches[layer], where[what]), n_int)

        return hooked.run_with_edits(self.bridge, chunk.repeat(n_int, 1), edit, layers, self.pred_positions)

    def _patches(
        self,
        plan: Plan,
        ivs: list[Intervention],
        src_keys: list[str | None],
        src_cache: dict[str, dict[str, list[torch.Tensor]]],
        b0: int,
        b1: int,
    ) -> list[LayerPatch]:
        s, dev = self.shape, self.device
        n = len(ivs)
        out = []
        for j, compute in enumerate(plan.compute):
            layer = plan.start + j
            col = {p: c for c, p in enumerate(compute)}
            n_p = len(compute)
            patch = LayerPatch()
            if n_p:
                heads = torch.zeros(n, 1, n_p, s.n_heads, 1, dtype=torch.bool, device=dev)
                post = torch.zeros(n, 1, n_p, s.d_mlp, dtype=torch.bool, device=dev)
                resid = torch.zeros(n, 1, n_p, 1, dtype=torch.bool, device=dev)
                used = {"head": False, "post": False, "resid": False}
                for i, iv in enumerate(ivs):
                    for site in iv.sites:
                        if site.layer != layer or site.position not in col:
                            continue
                        c = col[site.position]
                        if site.kind == "head":
                            heads[i, 0, c, site.head] = True
                            used["head"] = True
                        elif site.kind == "mlp":
                            post[i, 0, c, :] = True
                            used["post"] = True
                        elif site.kind == "neurons":
                            post[i, 0, c, list(site.neurons)] = True
                            used["post"] = True
                        else:
                            resid[i, 0, c] = True
                            used["resid"] = True
                cols = torch.tensor(compute, device=dev)
                if used["head"]:
                    patch.head = (heads, self._values(ivs, src_keys, src_cache, "z", self.stats.z, layer, cols, b0, b1))
                if used["post"]:
                    patch.post = (post, self._values(ivs, src_keys, src_cache, "post", self.stats.post, layer, cols, b0, b1))
                if used["resid"]:
                    patch.resid = (resid, self._values(ivs, src_keys, src_cache, "resid", self.stats.resid, layer, cols, b0, b1))
            out.append(patch)
        return out

    def _values(self, ivs, src_keys, src_cache, name, means, layer, cols, b0, b1) -> torch.Tensor:
        """[n, Bc or 1, P, ...] replacement values for one activation at one layer."""
        per: list[torch.Tensor] = []
        for iv, key in zip(ivs, src_keys):
            if iv.kind == "zero":
                per.append(torch.zeros_like(means[layer][cols]).unsqueeze(0))
            elif iv.kind == "mean":
                per.append(means[layer][cols].unsqueeze(0))
            else:
                cache = src_cache[key]
                act = cache["resid_pre"][layer + 1] if name == "resid" else cache[name][layer]
                per.append(act[:, cols])
        if all(p.shape[0] == 1 for p in per):
            return torch.stack(per)
        rows = b1 - b0
        return torch.stack([p.expand(rows, *p.shape[1:]) for p in per])
