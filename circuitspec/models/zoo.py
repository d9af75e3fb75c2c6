"""A model in memory (``Model``), and finding models: the shipped zoo, folders, files.

``load(name_or_path)`` accepts a shipped model's name (with or without its ``_tNK``
part, e.g. ``add_d6_l2_h3_s372001``), a card or weights file, or a folder holding
one model (or a folder plus a name via ``folder=``). Any other name is an error with the
closest name: a prefix or a typo is never taken to mean a model, since the wrong model
would run without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from circuitspec.errors import ModelError, unknown
from circuitspec.models.card import ModelCard, check_name, strip_steps
from circuitspec.vocabulary import ModelShape, digits_for
from circuitspec.models.store import CARD_SUFFIX, WEIGHTS_SUFFIX, load_weights, read_card


def zoo_dir() -> Path:
    """The folder of the shipped reference zoo (package data)."""
    return Path(str(resources.files("circuitspec") / "zoo"))


@dataclass
class Model:
    """A trained (or freshly built) model: the bridge, its card and its task."""

    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    card: ModelCard
    task: Any  # follows circuitspec.tasks.Task (ArithmeticTask or a plug-in)
    path: Path | None = field(default=None)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def shape(self) -> ModelShape:
        return self.card.shape

    @property
    def device(self) -> str:
        return str(next(self.bridge.parameters()).device)

    def to(self, device: str) -> "Model":
        from circuitspec.models.build import move

        move(self.bridge, device)
        return self

    def __call__(self, tokens):
        return self.bridge(tokens)


def make_task(op: str, digits: int, layout: str | None = None):
    """The task a card names (``tasks.registry``: built-in arithmetic or a plug-in class)."""
    from circuitspec.tasks.registry import make_task as build

    return build(op, digits, layout)


def model_from_tensors(card: ModelCard, tensors, path: Path | None = None, device: str = "cpu") -> Model:
    """Build the bridge for ``card`` and load ``tensors`` into it (eval mode)."""
    from circuitspec.models.build import build_bridge

    bridge = build_bridge(card.architecture, seed=0, device="cpu")
    bridge.load_state_dict(tensors, strict=True)
    bridge.eval()
    model = Model(bridge=bridge, card=card, task=make_task(card.task.op, card.task.digits, card.task.layout), path=path)
    return model.to(device) if device != "cpu" else model


def list_zoo(folder: str | Path | None = None) -> list[ModelCard]:
    """The cards of every model in ``folder`` (default: the shipped zoo), sorted by name."""
    folder = Path(folder) if folder is not None else zoo_dir()
    if not folder.is_dir():
        raise ModelError("model folder not found", file=str(folder), hint="pass an existing folder")
    return [read_card(p) for p in sorted(folder.glob(f"*{CARD_SUFFIX}")) if not p.name.startswith(".")]


def resolve(name_or_path: str | Path, folder: str | Path | None = None) -> Path:
    """The card path for a name or path (ModelError with suggestions when nothing matches)."""
    text = str(name_or_path)
    p = Path(text)
    if folder is None and (p.exists() or "/" in text or text.endswith((CARD_SUFFIX, WEIGHTS_SUFFIX))):
        if p.is_dir():
            cards = sorted(c for c in p.glob(f"*{CARD_SUFFIX}") if not c.name.startswith("."))
            if len(cards) != 1:
                raise ModelError(
                    f"folder holds {len(cards)} model cards, expected one",
                    file=str(p),
                    hint="name the model: load(NAME, folder=...) or pass its .json file"
                    + (f"; cards here: {', '.join(c.stem for c in cards[:8])}" if cards else ""),
                )
            return cards[0]
        if text.endswith(WEIGHTS_SUFFIX):
            return p.with_name(p.name[: -len(WEIGHTS_SUFFIX)] + CARD_SUFFIX)
        if text.endswith(CARD_SUFFIX):
            return p
        raise ModelError("no model at this path", file=text, hint="pass a NAME.json card, a NAME.safetensors file or a folder")
    where = Path(folder) if folder is not None else zoo_dir()
    cards = {c.stem: c for c in where.glob(f"*{CARD_SUFFIX}") if not c.name.startswith(".")}
    if text in cards:
        return cards[text]
    short = sorted(n for n in cards if strip_steps(n) == text)
    if len(short) == 1:
        return cards[short[0]]
    if len(short) > 1:
        raise ModelError(f"model name {text!r} is ambiguous in {where}", hint="name one of: " + ", ".join(short))
    raise unknown("model", text, cards, ModelError, file=str(where))


def load(name_or_path: str | Path, *, folder: str | Path | None = None, device: str = "cpu") -> Model:
    """Load a verified model: a shipped zoo name, a card/weights file, or a folder with one model."""
    card_path = resolve(name_or_path, folder)
    card = read_card(card_path)
    if card.name != card_path.stem:
        raise ModelError(
            f"card is named {card.name!r} but its file is {card_path.name}",
            file=str(card_path),
            hint=f"rename the pair to {card.name}{CARD_SUFFIX} / {card.name}{WEIGHTS_SUFFIX}",
        )
    tensors = load_weights(card, card_path)
    return model_from_tensors(card, tensors, path=card_path, device=device)


def save(model: Model, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Save ``model`` as NAME.safetensors + NAME.json in ``folder``; updates ``model.card`` (hash)."""
    from circuitspec.models.build import state_dict
    from circuitspec.models.store import save_weights

    card, path = save_weights(state_dict(model.bridge), model.card, Path(folder), overwrite=overwrite)
    model.card, model.path = card, path
    return path


def import_pth(path: str | Path, op: str, *, name: str | None = None, act_fn: str = "relu", normalization: str | None = None) -> Model:
    """Import a TransformerLens-format ``.pth`` state dict (e.g. the paper's) as a ``Model``.

    The architecture comes from the tensor keys and shapes (``models.tlformat``), the digit
    count from ``n_ctx``; ``op``, the MLP's ``act_fn`` and, for a checkpoint without norm
    weights, ``normalization`` "LNPre" (else none) cannot be read from weights and are given.
    """
    from circuitspec.models.card import TaskSpec
    from pydantic import ValidationError

    from circuitspec.models.store import problems_text, read_pth
    from circuitspec.models.tlformat import from_tl, tl_architecture
    from circuitspec.tasks.layout import check_op

    check_op(op)
    where = str(path)
    name = check_name(name if name is not None else Path(path).stem, file=where)
    tl = read_pth(Path(path))
    arch = tl_architecture(tl, where, act_fn=act_fn, normalization=normalization)
    digits = digits_for(arch.n_ctx)
    if digits is None:
        raise ModelError(f"n_ctx {arch.n_ctx} is not 3 * digits + 4", file=where, hint="only arithmetic models in the paper's layout can be imported")
    tensors = from_tl(tl, arch, where)
    try:
        card = ModelCard(name=name, architecture=arch, task=TaskSpec(op=op, digits=digits), notes=f"imported from {Path(path).name}")
    except ValidationError as err:
        raise ModelError(f"checkpoint does not fit an arithmetic task: {problems_text(err)}", file=where) from None
    return model_from_tensors(card, tensors, path=None)


def export_pth(model: Model, path: str | Path) -> Path:
    """Write ``model`` as a TransformerLens-format state dict (W_Q [n_heads, d_model, d_head] ...)."""
    from circuitspec.models.build import state_dict
    from circuitspec.models.store import write_pth

    return write_pth(state_dict(model.bridge), model.card.architecture, Path(path))
