"""The trainer: the paper's recipe, deterministic under a seed, with checkpoints and resume.

AdamW (betas 0.9/0.98, weight decay 0.1); learning rate warms up linearly from
``warmup_start * lr`` over the first ``warmup_fraction`` of the steps, then follows a
cosine to 0; a fresh (enriched) batch every step from the task, drawn from one
``torch.Generator`` seeded with the recipe's seed; loss = mean negative log-likelihood
of the answer tokens only. Mixed models draw each row's operation from the same
generator (subtraction with probability ``sub_fraction``).

Checkpoints hold the weights, the optimizer state, the data generator's state and
the step; resuming from one gives bit-identical final weights (same thread count).
Library code never prints: pass ``callback`` to watch progress.
"""

from __future__ import annotations

import io
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from circuitspec.errors import ModelError
from circuitspec.tasks.registry import vocabulary
from circuitspec.models.card import (
    ARCH_HELP,
    Architecture,
    ModelCard,
    Recipe,
    TaskSpec,
    arch_text,
    default_architecture,
    format_ksteps,
    parse_arch,
    parse_name,
)

# Paper: mixed models see 66% subtraction (batches there, rows here), ins1 models 80%.
SUB_FRACTION = {"mix": 0.66, "ins1": 0.8}
DEFAULT_LR = 1e-3
DEFAULT_WIDTH = 128


@dataclass(frozen=True)
class StepInfo:
    step: int  # steps done so far (1..steps)
    steps: int
    loss: float
    lr: float


Callback = Callable[[StepInfo], None]


@dataclass
class Trained:
    model: object  # circuitspec.models.Model
    losses: list[float]
    seconds: float
    resumed_from: int | None

    @property
    def final_loss(self) -> float:
        tail = self.losses[-max(1, min(100, len(self.losses) // 10)) :]
        return sum(tail) / len(tail)


def lr_at(step: int, recipe: Recipe) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    warm = int(round(recipe.warmup_fraction * recipe.steps))
    if step < warm:
        return recipe.lr * (recipe.warmup_start + (1 - recipe.warmup_start) * step / warm)
    rest = max(1, recipe.steps - warm)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / rest))


def command_for(
    name: str, steps: int, width: int, lr: float, threads: int | None, device: str, init_from: str | None, d_head: int | None,
    hard_fraction: float = 0.0, arch: str = "",
) -> str:
    parts = [f"circuitspec zoo train {name}", f"--steps {steps}", f"--width {width}", f"--lr {lr:g}"]
    if d_head is not None and d_head != width // 4:
        parts.append(f"--d-head {d_head}")
    if arch:
        parts.append(f"--arch {arch}")
    if hard_fraction:
        parts.append(f"--hard-fraction {hard_fraction:g}")
    parts.append(f"--device {device}")
    parts.append(f"--threads {threads if threads is not None else 0}")
    if init_from:
        parts.append(f"--init-from {init_from}")
    return " ".join(parts)


def plan(
    name: str,
    *,
    steps: int | None = None,
    width: int = DEFAULT_WIDTH,
    d_head: int | None = None,
    lr: float = DEFAULT_LR,
    batch: int = 64,
    device: str = "cpu",
    threads: int | None = 1,
    init_from: str | None = None,
    checkpoint_every: int | None = None,
    hard_fraction: float = 0.0,
    arch: str = "",
) -> ModelCard:
    """A card (architecture, task, recipe, reproducing command; no results yet) for a paper-style name.

    ``name`` may omit ``_tNK``; then ``steps`` is required and the final name gets it.
    ``hard_fraction``: share of each batch replaced by sparse and cascade rows (``tasks.hard``).
    ``arch``: architecture words outside the zoo's family (``card.parse_arch``: "RMS,rotary,silu").
    """
    parsed = parse_name(name)
    if steps is None:
        if parsed.steps is None:
            raise ModelError(f"{name!r} does not say how many steps to train", hint="add _tNK to the name or pass --steps")
        steps = parsed.steps
    if parsed.steps is not None and format_ksteps(parsed.steps) != format_ksteps(steps):
        raise ModelError(f"{name!r} says {parsed.steps} steps but {steps} were asked for", hint="drop --steps or the _tNK part of the name")
    if not 0 <= hard_fraction <= 1:
        raise ModelError(f"hard fraction must be between 0 and 1, got {hard_fraction}")
    if width % 1 or width < 4:
        raise ModelError(f"width must be at least 4, got {width}")
    if parsed.ins1 and not init_from:
        raise ModelError(f"{name!r} is an ins1 model: it needs the addition model to start from", hint="pass --init-from NAME_OR_PATH (an add_d{digits}_... model)")
    if init_from and not parsed.ins1:
        raise ModelError(f"--init-from is only used by ins1_ models, not {name!r}", hint="rename to ins1_mix_... or drop --init-from")
    from circuitspec.tasks.layout import check_digits

    check_digits(parsed.digits)
    full = parsed.name(steps)
    changes = parse_arch(arch)
    if changes and init_from:
        raise ModelError("--init-from copies a model of the zoo's family; it does not combine with --arch", hint="drop --arch or --init-from")
    lay = vocabulary(parsed.op).layout(parsed.digits, parsed.layout)  # a TaskError for sub or mix without the sign
    changes = {"n_ctx": lay.n_ctx, "d_vocab": lay.d_vocab, **changes}
    try:
        arch_ = default_architecture(parsed.digits, parsed.n_layers, parsed.n_heads, width=width, d_head=d_head).model_copy(update=changes)
        arch_ = Architecture.model_validate(arch_.model_dump())
    except ValueError as err:
        from circuitspec.models.store import problems_text

        raise ModelError(f"--arch {arch!r}: {problems_text(err)}", hint=ARCH_HELP) from None
    sub = SUB_FRACTION["ins1"] if parsed.ins1 else SUB_FRACTION["mix"] if parsed.op == "mix" else None
    recipe = Recipe(
        steps=steps,
        batch=batch,
        lr=lr,
        seed=parsed.seed,
        sub_fraction=sub,
        init_from=init_from,
        device=device,
        threads=threads,
        checkpoint_every=checkpoint_every,
        hard_fraction=hard_fraction,
        command=command_for(full, steps, width, lr, threads, device, init_from, d_head, hard_fraction, arch_text(arch_)),
        torch_version=torch.__version__,
    )
    return ModelCard(name=full, architecture=arch_, task=TaskSpec(op=parsed.op, digits=parsed.digits, layout=parsed.layout), recipe=recipe)


# --- ins1 initialisation -------------------------------------------------------------------------


def ins1_init(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], tgt: Architecture, src: Architecture) -> dict[str, torch.Tensor]:
    """Copy a smaller model's weights into the first layers / heads / neurons of a larger one.

    Embeddings, unembedding and the final LayerNorm are copied whole; in each of the
    source's layers, its heads fill the target's first heads (Q/K/V rows, O columns)
    and its neurons the first MLP neurons. Everything else keeps its fresh init.
    """
    for field in ("d_model", "d_head", "n_ctx", "d_vocab"):
        if getattr(src, field) != getattr(tgt, field):
            raise ModelError(f"ins1: source {field} {getattr(src, field)} differs from target {getattr(tgt, field)}", hint="initialise from a model of the same width, d_head and digit count")
    for field in ("n_layers", "n_heads", "d_mlp"):
        if getattr(src, field) > getattr(tgt, field):
            raise ModelError(f"ins1: source has more {field} ({getattr(src, field)}) than the target ({getattr(tgt, field)})", hint="the source must be the smaller model")
    out = {k: v.clone() for k, v in target.items()}
    hd, m = src.n_heads * src.d_head, src.d_mlp
    for k in ("embed.weight", "pos_embed.weight", "ln_final.weight", "ln_final.bias", "unembed.weight", "unembed.bias"):
        out[k] = source[k].clone()
    for layer in range(src.n_layers):
        b = f"blocks.{layer}"
        for k in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.o.bias", "mlp.out.bias"):
            out[f"{b}.{k}"] = source[f"{b}.{k}"].clone()
        for p in ("q", "k", "v"):
            out[f"{b}.attn.{p}.weight"][:hd] = source[f"{b}.attn.{p}.weight"]
            out[f"{b}.attn.{p}.bias"][:hd] = source[f"{b}.attn.{p}.bias"]
        out[f"{b}.attn.o.weight"][:, :hd] = source[f"{b}.attn.o.weight"]
        out[f"{b}.mlp.in.weight"][:m] = source[f"{b}.mlp.in.weight"]
        out[f"{b}.mlp.in.bias"][:m] = source[f"{b}.mlp.in.bias"]
        out[f"{b}.mlp.out.weight"][:, :m] = source[f"{b}.mlp.out.weight"]
    return out


# --- training --------------------------------------------------------------------------------------


def answer_loss(module, tokens: torch.Tensor, n_answer: int) -> torch.Tensor:
    """Mean NLL of the answer tokens (logits at p-1 predict the token at p)."""
    n_ctx = tokens.shape[1]
    logits = module(tokens)[:, n_ctx - n_answer - 1 : n_ctx - 1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, n_ctx - n_answer :].reshape(-1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is optional
        pass


def _checkpoint_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.ckpt"


def _recipe_key(card: ModelCard) -> str:
    r = card.recipe
    keep = r.model_dump(exclude={"command", "train_seconds", "torch_version", "checkpoint_every", "device"})
    return ModelCard(name=card.name, architecture=card.architecture, task=card.task).model_dump_json() + repr(sorted(keep.items()))


def _save_checkpoint(path: Path, card: ModelCard, step: int, module, optimizer, generator, losses, seconds) -> None:
    from circuitspec.atomic import atomic_write

    buf = io.BytesIO()
    torch.save(
        {
            "key": _recipe_key(card),
            "step": step,
            "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "losses": torch.tensor(losses, dtype=torch.float64),
            "seconds": float(seconds),
        },
        buf,
    )
    atomic_write(path, buf.getvalue())


def _load_checkpoint(path: Path, card: ModelCard) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"checkpoint cannot be read ({type(err).__name__})", file=str(path), hint="delete it to start from scratch") from None
    if ck.get("key") != _recipe_key(card):
        raise ModelError("checkpoint belongs to a different model or recipe", file=str(path), hint="delete it, or train with the recipe that wrote it")
    return ck


def train(
    card: ModelCard,
    *,
    init: object | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    callback: Callback | None = None,
) -> Trained:
    """Train the model ``card`` describes (``card.recipe`` is required; see ``plan``).

    ``init``: the trained addition ``Model`` for ins1 initialisation. With
    ``checkpoint_dir`` and ``recipe.checkpoint_every``, a checkpoint is written every
    that many steps (and deleted when training finishes); with ``resume``, an existing
    matching checkpoint is continued from. An exception from ``callback`` stops training
    (the last checkpoint stays).
    """
    from circuitspec.models.zoo import Model, make_task

    recipe = card.recipe
    if recipe is None:
        raise ModelError(f"card {card.name!r} has no training recipe", hint="build the card with circuitspec.models.plan(name, ...)")
    old_threads = torch.get_num_threads()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    try:
        seed_everything(recipe.seed)
        bridge = _initial_bridge(card, init)
        device = recipe.device
        bridge.train()
        module = getattr(bridge, "original_model", bridge)  # same parameters, without the bridge's wrapper
        digits = card.task.digits
        task = make_task(card.task.op, digits, card.task.layout)
        n_answer = task.n_answer
        optimizer = torch.optim.AdamW(bridge.parameters(), lr=lr_at(0, recipe), betas=recipe.betas, weight_decay=recipe.weight_decay)
        generator = torch.Generator().manual_seed(recipe.seed)
        losses: list[float] = []
        start_step, resumed_from, elapsed0 = 0, None, 0.0
        ckpt = _checkpoint_path(Path(checkpoint_dir), card.name) if checkpoint_dir is not None else None
        if ckpt is not None and resume and ckpt.exists():
            losses, start_step, elapsed0 = _resume(ckpt, card, bridge, optimizer, generator)
            resumed_from = start_step

        t0 = time.perf_counter()
        for step in range(start_step, recipe.steps):
            lr = lr_at(step, recipe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            extra = {"sub_p": recipe.sub_fraction} if recipe.sub_fraction is not None else {}
            if recipe.hard_fraction:
                extra["hard_p"] = recipe.hard_fraction
            tokens = task.generate(recipe.batch, generator, enrich=recipe.enrich, **extra).to(device)
            loss = answer_loss(module, tokens, n_answer)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            losses.append(value)
            done = step + 1
            if ckpt is not None and recipe.checkpoint_every and done % recipe.checkpoint_every == 0 and done < recipe.steps:
                _save_checkpoint(ckpt, card, done, bridge, optimizer, generator, losses, elapsed0 + time.perf_counter() - t0)
            if callback is not None:
                callback(StepInfo(step=done, steps=recipe.steps, loss=value, lr=lr))
        seconds = elapsed0 + time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_threads)
    bridge.eval()
    if ckpt is not None and ckpt.exists():
        os.unlink(ckpt)
    recipe = recipe.model_copy(update={"train_seconds": round(seconds, 1)})
    card = card.model_copy(update={"recipe": recipe})
    model = Model(bridge=bridge, card=card, task=make_task(card.task.op, digits, card.task.layout))
    return Trained(model=model, losses=losses, seconds=seconds, resumed_from=resumed_from)


def _initial_bridge(card: ModelCard, init: object | None):
    """The untrained bridge on the recipe's device: seeded random weights, or ins1's from ``init``."""
    from circuitspec.models.build import build_bridge, move, state_dict

    recipe = card.recipe
    bridge = build_bridge(card.architecture, seed=recipe.seed, device="cpu")
    if recipe.init_from:
        if init is None:
            raise ModelError(f"{card.name} starts from {recipe.init_from}: pass init=<that Model>")
        weights = ins1_init(state_dict(bridge), state_dict(init.bridge), card.architecture, init.card.architecture)
        bridge.load_state_dict(weights, strict=True)
    if recipe.device != "cpu":
        move(bridge, recipe.device)
    return bridge


def _resume(ckpt: Path, card: ModelCard, bridge, optimizer, generator) -> tuple[list[float], int, float]:
    """Restore weights, optimizer and random states from a checkpoint; (losses, step, seconds so far)."""
    ck = _load_checkpoint(ckpt, card)
    bridge.load_state_dict(ck["model"], strict=True)
    optimizer.load_state_dict(ck["optimizer"])
    generator.set_state(ck["generator"])
    torch.set_rng_state(ck["torch_rng"])
    return ck["losses"].tolist(), int(ck["step"]), float(ck["seconds"])
