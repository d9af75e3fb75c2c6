"""Weights on disk: safetensors + card JSON (atomic, hashed), and ``.pth`` files (``models.tlformat``).

A saved model is two files in one folder: ``NAME.safetensors`` (the bridge's state dict)
and ``NAME.json`` (its ``ModelCard``, holding the sha256 of the weights file). Both are
written to a temporary file in the same folder and moved into place with ``os.replace``,
so an interrupted save never leaves a half-written file under either name. Loading
checks the hash, then every key and shape against the card's architecture, then that every
weight is finite (a NaN or an infinity makes every answer meaningless, whatever the hash
says); any problem is a ``ModelError`` naming the file and the fix. Loading never writes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from pydantic import ValidationError

from circuitspec.errors import ModelError
from circuitspec.models.build import expected_shapes
from circuitspec.models.card import Architecture, ModelCard
from circuitspec.atomic import atomic_write

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"


def problems_text(err: Exception) -> str:
    """The first problems of a (pydantic) validation error, on one line."""
    if isinstance(err, ValidationError):
        parts = [
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
            for e in err.errors(include_url=False)[:3]
        ]
        return "; ".join(parts)
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    """``Type: first line`` of an exception (some carry no message at all)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def paths_for(folder: Path, name: str) -> tuple[Path, Path]:
    """(weights path, card path) of model ``name`` in ``folder``."""
    folder = Path(folder)
    return folder / f"{name}{WEIGHTS_SUFFIX}", folder / f"{name}{CARD_SUFFIX}"


def weights_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    ordered = {k: tensors[k].detach().cpu().contiguous() for k in sorted(tensors)}
    return save(ordered, metadata={"format": "pt"})


def save_weights(tensors: dict[str, torch.Tensor], card: ModelCard, folder: Path, *, overwrite: bool = False) -> tuple[ModelCard, Path]:
    """Save weights + card under ``folder``; returns the card (with the hash filled in) and the card path."""
    check_shapes(tensors, card.architecture, f"{card.name} (in memory)")
    wpath, cpath = paths_for(folder, card.name)
    if not overwrite and (wpath.exists() or cpath.exists()):
        raise ModelError(
            f"model {card.name!r} already exists in {folder}",
            file=str(cpath),
            hint="choose another --out folder or name, or pass overwrite=True / --force",
        )
    data = weights_bytes(tensors)
    card = card.model_copy(update={"weights_sha256": sha256_bytes(data)})
    atomic_write(wpath, data)
    atomic_write(cpath, card.to_json().encode())
    return card, cpath


def read_card(path: Path) -> ModelCard:
    path = Path(path)
    if not path.is_file():
        raise ModelError("model card not found", file=str(path), hint="check the path, or run `circuitspec zoo list`")
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValueError as err:  # pydantic ValidationError and JSON errors
        raise ModelError(
            "model card does not validate: " + problems_text(err),
            file=str(path),
            hint="the card is corrupt or from another tool; restore it or retrain the model (`circuitspec zoo train NAME`)",
        ) from None


def load_weights(card: ModelCard, card_path: Path) -> dict[str, torch.Tensor]:
    """The verified state dict for ``card`` (hash, keys and shapes all checked)."""
    from safetensors.torch import load

    wpath = Path(card_path).with_name(card.name + WEIGHTS_SUFFIX)
    retrain = f"retrain it with `circuitspec zoo train {card.name}`" + (
        f" (the card's command: {card.recipe.command})" if card.recipe and card.recipe.command else ""
    )
    if not wpath.is_file():
        raise ModelError("weights file is missing", file=str(wpath), hint=f"restore {wpath.name} next to {Path(card_path).name}, or {retrain}")
    data = wpath.read_bytes()
    if card.weights_sha256 and sha256_bytes(data) != card.weights_sha256:
        raise ModelError(
            "weights file does not match its card (sha256 differs): the file is corrupt or belongs to another model",
            file=str(wpath),
            hint=f"restore the original file, or {retrain}",
        )
    try:
        tensors = load(data)
    except Exception as err:  # safetensors raises its own error types
        raise ModelError(f"weights file is not a readable safetensors file ({err})", file=str(wpath), hint=retrain) from None
    check_shapes(tensors, card.architecture, str(wpath))
    check_finite(tensors, str(wpath), hint=f"restore the original file, or {retrain}")
    return tensors


def check_finite(tensors: dict[str, torch.Tensor], where: str, hint: str) -> None:
    """ModelError when any weight is NaN or infinite: such a model cannot compute an answer."""
    bad = [k for k in sorted(tensors) if tensors[k].is_floating_point() and not bool(torch.isfinite(tensors[k]).all())]
    if bad:
        raise ModelError(
            f"weights hold NaN or infinite values ({', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}): the model cannot compute",
            file=where,
            hint=hint,
        )


def check_shapes(tensors: dict[str, torch.Tensor], arch: Architecture, where: str) -> None:
    want = expected_shapes(arch)
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    wrong = [f"{k} {tuple(tensors[k].shape)} (card says {want[k]})" for k in sorted(set(want) & set(tensors)) if tuple(tensors[k].shape) != want[k]]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    if extra:
        problems.append("unexpected " + ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else ""))
    if wrong:
        problems.append("wrong shape " + ", ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
    if problems:
        raise ModelError(
            "weights do not match the card's architecture: " + "; ".join(problems),
            file=where,
            hint="the card and the weights come from different models; restore the matching pair or retrain",
        )


# --- TransformerLens checkpoint format (as the paper published its models) -------------------

def read_pth(path: Path) -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict, loaded with ``weights_only=True`` (never unpickles code)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("checkpoint not found", file=str(path), hint="check the path")
    if path.stat().st_size == 0:
        raise ModelError("checkpoint is empty (0 bytes)", file=str(path), hint="the file was not written completely; save it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(
            f"cannot read checkpoint with weights_only=True ({_first_line(err)})",
            file=str(path),
            hint="save a plain state dict: torch.save(model.state_dict(), path)",
        ) from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError("checkpoint is not a state dict of tensors", file=str(path), hint="save model.state_dict(), not the model object")
    return dict(obj)


def write_pth(tensors: dict[str, torch.Tensor], arch: Architecture, path: Path) -> Path:
    """Export to the TransformerLens format (atomic write)."""
    import io

    from circuitspec.models.tlformat import to_tl

    buf = io.BytesIO()
    torch.save(to_tl(tensors, arch), buf)
    atomic_write(Path(path), buf.getvalue())
    return Path(path)

