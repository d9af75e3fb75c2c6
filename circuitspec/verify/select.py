"""Which models a run is about: the one model selector of the CLI, the Python API and the plugin.

A selector is a zoo model's name (full, or without ``_tNK``), a glob over those names, a card
or weights file, a glob over card files (with a ``/``), a folder (every card in it), or several
of these joined by commas. Globs over names match the cards of one zoo folder (default: the
shipped zoo; the plugin's ``--circuit-zoo``). Models come back sorted by name, each once, known
by their card until a worker loads the weights.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitspec.errors import ModelError, closest

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class ModelRef:
    """A model to verify: its name, card file and card; ``loaded`` when it is already in memory."""

    name: str
    path: str  # the card file, as ``circuitspec.models.load`` accepts it ("" for a model only in memory)
    card: Any  # circuitspec.models.ModelCard
    loaded: Any = field(default=None, compare=False, repr=False)  # a circuitspec Model, used as is

    @property
    def weights_id(self) -> str:
        """The weights hash from the card (or, for a card without one, a hash of the card itself)."""
        sha = getattr(self.card, "weights_sha256", "")
        return sha or "card:" + hashlib.sha256(self.card.model_dump_json().encode()).hexdigest()

    @classmethod
    def of(cls, model: Any) -> "ModelRef":
        """The reference of a loaded ``Model`` (it is verified as it is, never reloaded)."""
        if not hasattr(model, "card") or not hasattr(model, "bridge"):
            raise ModelError(f"expected a model name, a card path or a circuitspec Model, got {type(model).__name__}")
        return cls(model.card.name, str(getattr(model, "path", "") or ""), model.card, model)


def matching(cards: Sequence[Any], pattern: str, *, where: str | None = None) -> list[Any]:
    """The cards whose full or short name (without ``_tNK``) matches the glob ``pattern``.

    A pattern that matches nothing is an error listing the names it could have matched.
    """
    hits = [c for c in cards if fnmatch.fnmatchcase(c.name, pattern) or fnmatch.fnmatchcase(c.short_name, pattern)]
    if not hits:
        names = [c.name for c in cards]
        guess = closest(pattern, names)
        hint = (f"did you mean {guess!r}? " if guess else "") + "allowed: " + (", ".join(names) or "(the zoo is empty)")
        raise ModelError(f"unknown model pattern {pattern!r}: no model matches it", file=where, hint=hint)
    return hits


def resolve_models(selectors: Sequence[str] | None = None, *, zoo: str | Path | None = None) -> list[ModelRef]:
    """The models that ``selectors`` select (see the module docstring); none given: the whole zoo."""
    from circuitspec.models.store import read_card
    from circuitspec.models.zoo import list_zoo, resolve, zoo_dir

    folder = Path(zoo) if zoo is not None else zoo_dir()
    paths: list[Path] = []
    if not selectors:
        cards = list_zoo(folder)
        if not cards:
            raise ModelError("the zoo is empty", file=str(folder), hint="pass --models NAME|GLOB|DIR")
        paths = [folder / f"{c.name}.json" for c in cards]
    for sel in selectors or []:
        for part in [s.strip() for s in str(sel).split(",") if s.strip()]:
            paths += _paths(part, folder, resolve, list_zoo)
    refs: dict[str, ModelRef] = {}
    for path in paths:
        card = read_card(path)
        if card.name in refs and Path(refs[card.name].path).resolve() != path.resolve():
            raise ModelError(f"two different models are named {card.name!r}", file=str(path), hint=f"the other is {refs[card.name].path}")
        refs[card.name] = ModelRef(card.name, str(path), card)
    return [refs[n] for n in sorted(refs)]


def _paths(part: str, folder: Path, resolve, list_zoo) -> list[Path]:
    p = Path(part)
    if p.is_dir():
        found = sorted(c for c in p.glob("*.json") if not c.name.startswith("."))
        if not found:
            raise ModelError("no model cards (*.json) in this folder", file=part, hint="pass a folder of NAME.json + NAME.safetensors pairs")
        return found
    if any(ch in part for ch in GLOB_CHARS):
        if "/" in part:
            found = sorted(Path(x) for x in glob.glob(part) if x.endswith(".json"))
            if not found:
                raise ModelError(f"no model matches {part!r}", hint="a glob with a '/' matches card files (NAME.json) on disk")
            return found
        return [folder / f"{c.name}.json" for c in matching(list_zoo(folder), part, where=str(folder))]
    looks_like_path = p.exists() or "/" in part or part.endswith((".json", ".safetensors"))
    return [resolve(part) if looks_like_path else resolve(part, folder)]
