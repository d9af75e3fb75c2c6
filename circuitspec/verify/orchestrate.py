"""Verify many hypotheses on many models: plan, run (any executor), resume, and assemble a Report.

One work item per model: ``verify_model(hypotheses, model, seed=...)`` gets every hypothesis that
applies to the model and has no finished verdict yet, so facts are measured once per model.
Each finished verdict is written atomically to ``<out>/verdicts/<key>.json``, where the key hashes
the hypothesis's content (the loaded, include-resolved spec), the model's name and weights hash
(from its card), the seed and the circuitspec version; a rerun with the same inputs reuses them and
verifies only what is missing. The Report orders verdicts by the hypotheses' order as given, then
by model name, so the same inputs give a byte-identical ``report.json`` whichever executor ran
them and however often the run was interrupted.

Progress: ``on_event(Event)`` receives, per model, ``cached`` (nothing to do), ``queued``,
``loading``, ``verifying``, ``log`` (INFO records of ``circuitspec.*`` loggers emitted while
verifying, e.g. the verifier's stages), ``done`` (with the verdicts' statuses and the item's wall
time, measured in the worker). Library code never prints; the CLI turns events into progress bars.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from circuitspec.errors import CircuitSpecError, ModelError, SpecError
from circuitspec.verify.executors import Executor, LocalExecutor
from circuitspec.verify.verdict import Report, Verdict

log = logging.getLogger(__name__)

VERDICTS_DIR = "verdicts"
GLOB_CHARS = "*?["


def circuitspec_version() -> str:
    from circuitspec import __version__

    return __version__


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ModelRef:
    """A model to verify, known by its card (cheap) until a worker loads its weights."""

    name: str
    path: str  # the card file, as passed to ``circuitspec.models.load``
    card: Any  # circuitspec.models.ModelCard

    @property
    def weights_id(self) -> str:
        """The weights hash from the card (or, for a card without one, a hash of the card itself)."""
        sha = getattr(self.card, "weights_sha256", "")
        return sha or "card:" + hashlib.sha256(self.card.model_dump_json().encode()).hexdigest()


def load_specs(paths: Sequence[str | Path]) -> list[Any]:
    """Load spec files (SpecError for a bad file; duplicate hypothesis names are an error)."""
    from circuitspec.spec.schema import Hypothesis

    if not paths:
        raise SpecError("no spec files given", hint="e.g. circuitspec verify specs/addition.yaml")
    out, seen = [], {}
    for p in paths:
        h = Hypothesis.load(p)
        if h.name in seen:
            raise SpecError(
                f"hypothesis name {h.name!r} is used by two spec files ({seen[h.name]} and {p})",
                file=str(p),
                hint="give each hypothesis its own name",
            )
        seen[h.name] = str(p)
        out.append(h)
    return out


def resolve_models(selectors: Sequence[str] | None = None) -> list[ModelRef]:
    """The models that ``--models`` selects, sorted by name and without duplicates.

    Each selector is a folder (every model card in it), a glob over the shipped zoo's names (or,
    with a ``/``, over card files on disk), or comma-separated names / card paths as
    ``circuitspec.models.load`` accepts them. No selector: the whole shipped zoo.
    """
    from circuitspec.models import list_zoo, zoo_dir
    from circuitspec.models.store import read_card
    from circuitspec.models.zoo import resolve

    paths: list[Path] = []
    if not selectors:
        cards = list_zoo()
        if not cards:
            raise ModelError("the shipped zoo is empty", file=str(zoo_dir()), hint="pass --models NAME|GLOB|DIR")
        paths = [zoo_dir() / f"{c.name}.json" for c in cards]
    for sel in selectors or []:
        for part in [s.strip() for s in str(sel).split(",") if s.strip()]:
            p = Path(part)
            if p.is_dir():
                found = sorted(c for c in p.glob("*.json") if not c.name.startswith("."))
                if not found:
                    raise ModelError("no model cards (*.json) in this folder", file=part, hint="pass a folder of NAME.json + NAME.safetensors pairs")
                paths += found
            elif any(ch in part for ch in GLOB_CHARS):
                if "/" in part:
                    found = sorted(Path(x) for x in _glob_files(part) if x.endswith(".json"))
                else:
                    zoo = {c.name: c for c in list_zoo()}
                    names = sorted(n for n in zoo if fnmatch.fnmatchcase(n, part) or fnmatch.fnmatchcase(_short(n), part))
                    found = [zoo_dir() / f"{n}.json" for n in names]
                if not found:
                    raise ModelError(f"no model matches {part!r}", hint="see 'circuitspec zoo list' for the shipped models")
                paths += found
            else:
                paths.append(resolve(part))
    refs: dict[str, ModelRef] = {}
    for path in paths:
        card = read_card(path)
        if card.name in refs and Path(refs[card.name].path).resolve() != path.resolve():
            raise ModelError(f"two different models are named {card.name!r}", file=str(path), hint=f"the other is {refs[card.name].path}")
        refs[card.name] = ModelRef(card.name, str(path), card)
    return [refs[n] for n in sorted(refs)]


def _glob_files(pattern: str) -> list[str]:
    import glob

    return glob.glob(pattern)


def _short(name: str) -> str:
    from circuitspec.models.card import strip_steps

    return strip_steps(name)


def applies(hypothesis: Any, card: Any) -> tuple[bool, str]:
    """Whether a hypothesis applies to a model (by the spec's ``applies_to`` and the model's shape)."""
    result = hypothesis.applies(card.shape)
    if isinstance(result, tuple):
        ok, why = result[0], (result[1] if len(result) > 1 else "")
        return bool(ok), str(why or "")
    return bool(result), getattr(result, "reason", "") or ""


def spec_digest(hypothesis: Any) -> str:
    """sha256 of the hypothesis's content (the loaded spec, includes resolved)."""
    return hashlib.sha256(hypothesis.model_dump_json().encode()).hexdigest()


def verdict_key(hypothesis: Any, model: ModelRef, seed: int, version: str | None = None) -> str:
    """Cache key of one (hypothesis, model) verdict."""
    payload = {
        "spec": spec_digest(hypothesis),
        "model": model.name,
        "weights": model.weights_id,
        "seed": seed,
        "circuitspec": version or circuitspec_version(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Pair:
    hypothesis: str
    model: str
    key: str


@dataclass(frozen=True)
class WorkItem:
    """One model's work: the hypotheses still to verify on it. Picklable (processes, Ray)."""

    model: ModelRef
    hypotheses: tuple[Any, ...]
    seed: int
    verify_model: Callable | None = None  # default: circuitspec.verify.core.verify_model
    load_model: Callable | None = None  # default: circuitspec.models.load
    threads: int | None = 1  # torch threads in the worker (same everywhere, so results do not depend on --jobs)

    @property
    def cost(self) -> int:
        """A guess at the item's work, for starting the heaviest first: hypotheses x sites (layers x (heads + MLP) x positions)."""
        shape = self.model.card.shape
        return len(self.hypotheses) * shape.n_layers * (shape.n_heads + 1) * shape.n_ctx


@dataclass
class Plan:
    hypotheses: list[Any]
    models: list[ModelRef]
    seed: int
    pairs: list[Pair]  # applicable (hypothesis, model) pairs, in report order
    cached: dict[tuple[str, str], Verdict]  # finished verdicts found under out/verdicts
    items: list[WorkItem]  # what is left to run, one per model
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)  # (hypothesis, model, why)

    def unused_hypotheses(self) -> list[str]:
        used = {p.hypothesis for p in self.pairs}
        return [h.name for h in self.hypotheses if h.name not in used]


def _read_cached(path: Path, hypothesis: str, model: str) -> Verdict | None:
    try:
        v = Verdict.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, pydantic.ValidationError) as err:
        log.warning("ignoring unreadable cached verdict %s: %s", path, err)
        return None
    if (v.hypothesis, v.model) != (hypothesis, model):
        log.warning("ignoring cached verdict %s: it is for %s on %s", path, v.hypothesis, v.model)
        return None
    return v


def plan(
    hypotheses: Sequence[Any],
    models: Sequence[ModelRef],
    *,
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = True,
    verify_model: Callable | None = None,
    load_model: Callable | None = None,
    threads: int | None = 1,
) -> Plan:
    """Decide which pairs apply, which verdicts are already finished, and the work items left."""
    version = circuitspec_version()
    models = sorted(models, key=lambda m: m.name)
    pairs: list[Pair] = []
    not_applicable = []
    for h in hypotheses:
        for m in models:
            ok, why = applies(h, m.card)
            if ok:
                pairs.append(Pair(h.name, m.name, verdict_key(h, m, seed, version)))
            else:
                not_applicable.append((h.name, m.name, why))
    cached: dict[tuple[str, str], Verdict] = {}
    if out is not None and resume:
        vdir = Path(out) / VERDICTS_DIR
        for p in pairs:
            v = _read_cached(vdir / f"{p.key}.json", p.hypothesis, p.model)
            if v is not None:
                cached[(p.hypothesis, p.model)] = v
    by_name = {h.name: h for h in hypotheses}
    items = []
    for m in models:
        todo = tuple(by_name[p.hypothesis] for p in pairs if p.model == m.name and (p.hypothesis, p.model) not in cached)
        if todo:
            items.append(WorkItem(m, todo, seed, verify_model, load_model, threads))
    return Plan(list(hypotheses), list(models), seed, pairs, cached, items, not_applicable)


# ----------------------------------------------------------------------------- work


@dataclass(frozen=True)
class Event:
    """Progress of one model's work item."""

    model: str
    stage: str  # cached | queued | loading | verifying | log | done
    detail: str = ""
    hypotheses: int = 0
    seconds: float | None = None  # 'done': wall time of the item (loading and verifying) in its worker


class _Forward(logging.Handler):
    """Forwards INFO records of circuitspec.* loggers to ``emit`` as 'log' events while an item runs."""

    def __init__(self, model: str, emit: Callable[[Event], None]) -> None:
        super().__init__(logging.INFO)
        self.model, self.emit_event = model, emit

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.emit_event(Event(self.model, "log", record.getMessage()))
        except Exception:  # progress must never break the work
            pass


def run_item(item: WorkItem, emit: Callable[[Event], None] | None = None) -> list[str]:
    """Load the model and verify its hypotheses; return the verdicts as JSON (one per hypothesis, in order)."""
    if not item.threads:
        return _run_item(item, emit)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(item.threads)
    try:
        return _run_item(item, emit)
    finally:
        torch.set_num_threads(before)


def _run_item(item: WorkItem, emit: Callable[[Event], None] | None) -> list[str]:
    started = time.perf_counter()
    say = emit or (lambda e: None)
    name = item.model.name
    load = item.load_model
    if load is None:
        from circuitspec.models import load
    verify_model = item.verify_model
    if verify_model is None:
        from circuitspec.verify.core import verify_model
    say(Event(name, "loading", item.model.path, len(item.hypotheses)))
    model = load(item.model.path)
    say(Event(name, "verifying", ", ".join(h.name for h in item.hypotheses), len(item.hypotheses)))
    logger = logging.getLogger("circuitspec")
    handler = _Forward(name, say) if emit is not None else None
    old_level = logger.level
    if handler is not None:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        verdicts = list(verify_model(list(item.hypotheses), model, seed=item.seed))
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
    by_name = {v.hypothesis: v for v in verdicts}
    missing = [h.name for h in item.hypotheses if h.name not in by_name]
    if missing:
        raise RuntimeError(f"verify_model returned no verdict for {missing} on {name}")
    out = []
    for h in item.hypotheses:
        v = by_name[h.name]
        if v.model != name:
            raise RuntimeError(f"verify_model returned a verdict for model {v.model!r}, expected {name!r}")
        out.append(v.model_dump_json())
    statuses = ", ".join(f"{h.name}: {by_name[h.name].status}" for h in item.hypotheses)
    say(Event(name, "done", statuses, len(out), seconds=time.perf_counter() - started))
    return out


def execute(
    p: Plan,
    executor: Executor | None = None,
    *,
    out: str | Path | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> Report:
    """Run the plan's work items, saving each verdict under ``out/verdicts`` as it arrives; return the Report."""
    from circuitspec.atomic import atomic_write

    executor = executor or LocalExecutor()
    say = on_event or (lambda e: None)
    verdicts: dict[tuple[str, str], Verdict] = dict(p.cached)
    keys = {(x.hypothesis, x.model): x.key for x in p.pairs}
    cached_models = {m.name for m in p.models} - {it.model.name for it in p.items}
    for m in p.models:
        if m.name in cached_models:
            n = sum(1 for x in p.pairs if x.model == m.name)
            if n:
                say(Event(m.name, "cached", f"{n} verdict(s) reused", n))
    for it in p.items:
        say(Event(it.model.name, "queued", "", len(it.hypotheses)))
    for index, result in executor.run(run_item, p.items, on_event):
        item = p.items[index]
        for h, text in zip(item.hypotheses, result):
            v = Verdict.model_validate_json(text)
            verdicts[(h.name, item.model.name)] = v
            if out is not None:
                atomic_write(Path(out) / VERDICTS_DIR / f"{keys[(h.name, item.model.name)]}.json", (v.to_json() + "\n").encode())
    ordered = [verdicts[(x.hypothesis, x.model)] for x in p.pairs]
    return Report(verdicts=ordered, circuitspec_version=circuitspec_version(), seed=p.seed)


def verify_all(
    hypotheses: Sequence[Any],
    models: Sequence[ModelRef],
    *,
    seed: int = 0,
    out: str | Path | None = None,
    executor: Executor | None = None,
    on_event: Callable[[Event], None] | None = None,
    verify_model: Callable | None = None,
    load_model: Callable | None = None,
) -> Report:
    """Plan and execute in one call (the Python entry point of ``circuitspec verify``, without files)."""
    p = plan(hypotheses, models, seed=seed, out=out, verify_model=verify_model, load_model=load_model)
    if not p.pairs:
        raise CircuitSpecError("none of the hypotheses applies to any of the selected models")
    return execute(p, executor, out=out, on_event=on_event)
