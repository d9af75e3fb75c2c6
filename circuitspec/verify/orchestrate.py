"""The one verify core over many models: plan, run (any executor), resume, and assemble a Report.

``cs.verify_many``, ``circuitspec verify`` and the pytest plugin's session all go through here:
one model selector (``verify.select``), one applicability rule (``spec.applies_to``), one work
unit (``run_item``: load the model, one torch thread, ``verify_model``) and one Report builder
(``build_report``): verdicts ordered by the hypotheses' order as given, then by model name;
pairs where a hypothesis does not apply to a model are left out of the report (``Plan.not_applicable``
says why). So the same inputs give a byte-identical ``report.json`` from every front end,
whichever executor ran them and however often the run was interrupted.

One work item per model: ``verify_model(hypotheses, model, seed=...)`` gets every hypothesis that
applies to the model and has no finished verdict yet, so facts are measured once per model. With
an output folder, each finished verdict is saved there as it arrives (``verify.outdir``), keyed by
the hypothesis's content, the model's name and weights hash, the seed and the circuitspec version;
a rerun verifies only what is missing, and verdicts of other runs into the folder join the report.

Progress: ``on_event(Event)`` receives, per model, ``cached`` (nothing to do), ``queued``,
``loading``, ``verifying``, ``log`` (INFO records of ``circuitspec.*`` loggers emitted while
verifying, e.g. the verifier's stages), ``done`` (with the verdicts' statuses and the item's wall
time, measured in the worker). Library code never prints; the CLI turns events into progress bars.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuitspec.errors import SpecError, VerifyError
from circuitspec.verify import outdir
from circuitspec.verify.executors import Executor, LocalExecutor
from circuitspec.verify.select import ModelRef, resolve_models
from circuitspec.verify.verdict import Report, Verdict
from circuitspec.version import __version__

log = logging.getLogger(__name__)

__all__ = [
    "Event", "ModelRef", "Pair", "Plan", "WorkItem", "build_report", "execute", "load_specs", "plan",
    "resolve_models", "run_item", "verdict_key", "verify_many",
]


# ----------------------------------------------------------------------------- inputs


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


def spec_digest(hypothesis: Any) -> str:
    """sha256 of the hypothesis's content (the loaded spec, includes resolved)."""
    return hashlib.sha256(hypothesis.model_dump_json().encode()).hexdigest()


def verdict_key(hypothesis: Any, model: ModelRef, seed: int, version: str | None = None, labels: bool = False) -> str:
    """Cache key of one (hypothesis, model) verdict (a verdict with site labels is another entry)."""
    payload = {
        "spec": spec_digest(hypothesis),
        "model": model.name,
        "weights": model.weights_id,
        "seed": seed,
        "circuitspec": version or __version__,
    }
    if labels:
        payload["labels"] = True
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
    cache_dir: str | None = None  # facts cache folder (default: $CIRCUITSPEC_CACHE, else ~/.cache/circuitspec)
    labels: bool = False  # also label the model and record what unassigned useful sites compute

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
    cached: dict[tuple[str, str], Verdict]  # finished verdicts found in the output folder
    items: list[WorkItem]  # what is left to run, one per model
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)  # (hypothesis, model, why)

    def unused_hypotheses(self) -> list[str]:
        used = {p.hypothesis for p in self.pairs}
        return [h.name for h in self.hypotheses if h.name not in used]


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
    cache_dir: str | Path | None = None,
    labels: bool = False,
) -> Plan:
    """Decide which pairs apply, which verdicts are already finished, and the work items left."""
    from circuitspec.spec.shape import applies_to

    models = sorted(models, key=lambda m: m.name)
    pairs: list[Pair] = []
    not_applicable = []
    for h in hypotheses:
        for m in models:
            ok = applies_to(h, m.card)
            if ok:
                pairs.append(Pair(h.name, m.name, verdict_key(h, m, seed, labels=labels)))
            else:
                not_applicable.append((h.name, m.name, ok.reason))
    cached: dict[tuple[str, str], Verdict] = {}
    if out is not None and resume:
        for p in pairs:
            v = outdir.read_verdict(outdir.verdict_path(out, p.key), p.hypothesis, p.model)
            if v is not None:
                cached[(p.hypothesis, p.model)] = v
    by_name = {h.name: h for h in hypotheses}
    cache = str(cache_dir) if cache_dir is not None else None
    items = []
    for m in models:
        todo = tuple(by_name[p.hypothesis] for p in pairs if p.model == m.name and (p.hypothesis, p.model) not in cached)
        if todo:
            items.append(WorkItem(m, todo, seed, verify_model, load_model, threads, cache, labels))
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
    model = item.model.loaded if item.model.loaded is not None else load(item.model.path)
    say(Event(name, "verifying", ", ".join(h.name for h in item.hypotheses), len(item.hypotheses)))
    logger = logging.getLogger("circuitspec")
    handler = _Forward(name, say) if emit is not None else None
    old_level = logger.level
    if handler is not None:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    extra = {"cache_dir": item.cache_dir} if item.cache_dir is not None else {}
    if item.labels:
        extra["labels"] = True
    try:
        verdicts = list(verify_model(list(item.hypotheses), model, seed=item.seed, **extra))
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
    by_name = {v.hypothesis: v for v in verdicts}
    missing = [h.name for h in item.hypotheses if h.name not in by_name]
    if missing:
        raise VerifyError(f"verify_model returned no verdict for {missing} on {name}", hint="a verify_model must return one verdict per hypothesis")
    out = []
    for h in item.hypotheses:
        v = by_name[h.name]
        if v.model != name:
            raise VerifyError(f"verify_model returned a verdict for model {v.model!r}, expected {name!r}")
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
    finish: Callable[[Report], Any] | None = None,
) -> Report:
    """Run the plan's work items, saving each verdict in ``out`` as it arrives; return the Report.

    With ``out`` the report also holds the verdicts earlier runs left in the folder (same seed and
    version, other pairs), and the folder is locked while this run writes it: the verdicts, then
    whatever ``finish(report)`` writes (the front ends render the report files there).
    """
    if out is None:
        report = _execute(p, executor, None, on_event)
        if finish is not None:
            finish(report)
        return report
    with outdir.lock(out):
        report = _execute(p, executor, out, on_event)
        if finish is not None:
            finish(report)
        return report


def _execute(p: Plan, executor: Executor | None, out: str | Path | None, on_event: Callable[[Event], None] | None) -> Report:
    if executor is None:  # models already in memory are verified here, not shipped to worker processes
        executor = LocalExecutor(1) if any(it.model.loaded is not None for it in p.items) else LocalExecutor()
    say = on_event or (lambda e: None)
    verdicts: dict[tuple[str, str], Verdict] = dict(p.cached)
    keys = {(x.hypothesis, x.model): x.key for x in p.pairs}
    busy = {it.model.name for it in p.items}
    for m in p.models:
        n = sum(1 for x in p.pairs if x.model == m.name)
        if m.name not in busy and n:
            say(Event(m.name, "cached", f"{n} verdict(s) reused", n))
    for it in p.items:
        say(Event(it.model.name, "queued", "", len(it.hypotheses)))
    for index, result in executor.run(run_item, p.items, on_event):
        item = p.items[index]
        for h, text in zip(item.hypotheses, result):
            v = Verdict.model_validate_json(text)
            verdicts[(h.name, item.model.name)] = v
            if out is not None:
                outdir.save(out, keys[(h.name, item.model.name)], v, __version__)
    ordered = [verdicts[(x.hypothesis, x.model)] for x in p.pairs]
    earlier = outdir.others(out, set(keys), p.seed, __version__) if out is not None else {}
    return build_report([*ordered, *earlier.values()], [h.name for h in p.hypotheses], p.seed)


# ----------------------------------------------------------------------------- the report


def build_report(verdicts: Iterable[Verdict], order: Sequence[str] = (), seed: int | None = None) -> Report:
    """The one Report builder: one verdict per (hypothesis, model), not-applicable ones left out,
    ordered by the hypotheses' ``order`` (others after, by name), then by model name.

    ``seed``: the run's seed (default: the verdicts' common seed; 0 for none).
    """
    rank = {name: i for i, name in enumerate(order)}
    seen: dict[tuple[str, str], Verdict] = {}
    for v in verdicts:
        if v.status != "not_applicable":
            seen.setdefault((v.hypothesis, v.model), v)
    ordered = sorted(seen.values(), key=lambda v: (rank.get(v.hypothesis, len(rank)), v.hypothesis, v.model))
    if seed is None:
        seeds = {v.seed for v in ordered}
        seed = seeds.pop() if len(seeds) == 1 else 0
    return Report(verdicts=ordered, circuitspec_version=__version__, seed=seed)


def verify_many(
    hypotheses: Sequence[Any],
    models: Sequence[ModelRef],
    *,
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = True,
    executor: Executor | None = None,
    on_event: Callable[[Event], None] | None = None,
    cache_dir: str | Path | None = None,
    finish: Callable[[Report], Any] | None = None,
    labels: bool = False,
) -> tuple[Report, Plan]:
    """Plan and execute in one call: the core of ``cs.verify_many`` and ``circuitspec verify``.

    Returns the Report and the Plan (which pairs did not apply, how many verdicts were reused).
    Files other than the verdicts (report.json, SVGs, HTML) are written by ``finish(report)``
    (``render.report.write_report``: this layer does not import the renderers).
    """
    p = plan(hypotheses, models, seed=seed, out=out, resume=resume, cache_dir=cache_dir, labels=labels)
    if not p.pairs:
        raise VerifyError(
            "none of the hypotheses applies to any of the selected models",
            hint="check the specs' applies_to against the models (circuitspec zoo list), or pass --models",
        )
    return execute(p, executor, out=out, on_event=on_event, finish=finish), p
