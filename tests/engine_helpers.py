"""Models for the engine tests.

``engine_model()`` is a shipped addition model (the 6-digit one when the zoo has it, else
the 5-digit 2-layer one); without a zoo the tests train a tiny 3-digit model (cached under
``.cache/engine-tests``), so they always run on a real trained model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# the shipped models the engine tests prefer, best first
ZOO_NAMES = ("add_d6_l2_h3_s372001", "add_d5_l2_h3_s372001")
ZOO_NAME = ZOO_NAMES[0]
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "engine-tests"


@dataclass
class TinyModel:
    bridge: Any
    task: Any
    name: str


def bridge_for(digits: int, n_layers: int = 2, n_heads: int = 3, d_model: int = 64, seed: int = 1):
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        d_model=d_model, d_head=d_model // 4, n_layers=n_layers, n_ctx=3 * digits + 4, n_heads=n_heads, d_vocab=15,
        d_mlp=4 * d_model, act_fn="relu", architecture="TransformerLensNative", seed=seed,
        normalization_type="LN", positional_embedding_type="standard",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_native(cfg)


def train_tiny(digits: int = 3, steps: int = 1500, seed: int = 1) -> TinyModel:
    """A small addition model trained with the paper's recipe shape (AdamW, answer-token NLL)."""
    from circuitspec.tasks import ArithmeticTask

    task = ArithmeticTask("add", digits)
    bridge = bridge_for(digits, seed=seed)
    path = CACHE / f"add_d{digits}_l2_h3_w64_s{seed}_{steps}.pt"
    if path.exists():
        bridge.load_state_dict(torch.load(path, weights_only=True))
        return TinyModel(bridge, task, path.stem)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(bridge.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    pred = [p - 1 for p in task.layout.answer_positions]
    for _ in range(steps):
        x = task.generate(64, g, enrich=True)
        logits = bridge(x)[:, pred]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 15), task.answers(x).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(bridge.state_dict(), tmp)
    tmp.replace(path)
    return TinyModel(bridge, task, path.stem)


def zoo_name() -> str | None:
    """The first of ``ZOO_NAMES`` that the shipped zoo holds."""
    try:
        from circuitspec.models import list_zoo
        from circuitspec.models.card import strip_steps

        have = {strip_steps(c.name) for c in list_zoo()}
    except Exception:
        return None
    return next((n for n in ZOO_NAMES if n in have), None)


def engine_model():
    """The model the engine tests run on (see the module docstring)."""
    name = zoo_name()
    if name is None:
        return train_tiny()
    from circuitspec.models import load

    return load(name)
