"""Labels of a model, cached with its facts: measured once, reused by ``label``, ``scan`` and reports.

The key follows the facts' scheme (``engine.cache.make_key``): it hashes the facts' own key (the
weights, task, engine version, engine seed and reference size, facts parameters), the label
parameters and the labeller's version (``LABELLER_VERSION``: raised when the same parameters would
give other labels), so any change reads a fresh entry and an old one is never read again. Entries sit
beside the facts in the same cache folder (``labels-<key>.json``), written atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from circuitspec.engine import Engine
from circuitspec.engine.cache import JsonCache, make_key
from circuitspec.engine.facts import Facts, FactsParams, facts_key, load_or_compute
from circuitspec.match.label import LABELLER_VERSION, LabelParams, Labels, label

log = logging.getLogger(__name__)

PREFIX = "labels"


def params_from(**fields: Any) -> LabelParams:
    """Label parameters from user input, or a ``VerifyError`` naming the bad one and its range."""
    from pydantic import ValidationError

    from circuitspec.errors import VerifyError

    try:
        return LabelParams(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(x) for x in first["loc"])
        info = LabelParams.model_fields.get(name)
        meta = {k: getattr(m, k) for m in (info.metadata if info else []) for k in ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None}
        limits = ", ".join(f"{k} {v}" for k, v in meta.items())
        known = ", ".join(n for n in LabelParams.model_fields if n != "seed")
        hint = f"{info.description or name}{f' ({limits})' if limits else ''}" if info else f"label options: {known}"
        raise VerifyError(f"bad label option {name.replace('_', '-')}={first.get('input')!r}: {first['msg']}", hint=hint) from None


def labels_key(engine: Engine, facts_params: FactsParams, params: LabelParams) -> str:
    parts = {"facts": facts_key(engine, facts_params), "params": params.model_dump(mode="json"), "labeller": LABELLER_VERSION}
    return make_key("labels", parts)


def _read(store: JsonCache, key: str) -> Labels | None:
    text = store.read(key)
    if text is None:
        return None
    try:
        labels = Labels.model_validate_json(text)
        if labels.key == key:
            labels._from_cache = True
            return labels
    except ValueError as err:
        log.warning("ignoring an unreadable labels cache entry %s: %s", store.path(key), err)
    store.hits -= 1
    store.misses += 1
    return None


def cached(engine: Engine, params: LabelParams | None = None, *, cache_dir: str | os.PathLike | None = None) -> Labels | None:
    """The model's labels if the cache holds them (for the preset facts), else None; never measures."""
    params = params or LabelParams(seed=engine.seed)
    return _read(JsonCache(cache_dir, prefix=PREFIX), labels_key(engine, FactsParams.preset(engine.seed), params))


@dataclass
class Labelled:
    """Labels with where they came from (for the front ends' messages)."""

    labels: Labels
    facts: Facts
    from_cache: bool
    cache_hits: int


def load_or_label(
    engine: Engine,
    params: LabelParams | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> Labelled:
    """The model's labels from the cache, else measured (facts too, if needed) and stored."""
    params = params or LabelParams(seed=engine.seed)
    fparams = FactsParams.preset(engine.seed)
    facts = load_or_compute(engine, fparams, cache=JsonCache(cache_dir), use_cache=use_cache, progress=progress)
    store = JsonCache(cache_dir, prefix=PREFIX)
    key = labels_key(engine, fparams, params)
    if use_cache:
        hit = _read(store, key)
        if hit is not None:
            return Labelled(hit, facts, True, store.hits)
    labels = label(engine, facts, params, key=key, progress=progress)
    if use_cache:
        store.write(key, labels.to_json())
    return Labelled(labels, facts, False, store.hits)


def label_model(model: Any, *, seed: int = 0, params: LabelParams | None = None, cache_dir=None, use_cache: bool = True, progress=None) -> Labelled:
    """Label a model (a ``circuitspec.models.Model`` or a name / path ``models.load`` takes)."""
    from circuitspec.models import load

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    return load_or_label(Engine(model, seed=seed), params, cache_dir=cache_dir, use_cache=use_cache, progress=progress)


@dataclass(frozen=True)
class LabelItem:
    """One model to label in a worker (picklable)."""

    model: str
    seed: int
    params: LabelParams
    cache_dir: str | None
    use_cache: bool
    threads: int = 1


def run_item(item: LabelItem, emit=None) -> tuple[Labels, bool]:
    """Label one model in this process (the executors' work function); (labels, from cache).
    ``emit`` receives (model, stage, done, total) progress events."""
    import torch

    if item.threads:
        torch.set_num_threads(item.threads)
    def progress(stage: str, done: int, total: int) -> None:
        if emit is not None:
            emit((item.model, stage, done, total))

    done = label_model(item.model, seed=item.seed, params=item.params, cache_dir=item.cache_dir, use_cache=item.use_cache, progress=progress)
    progress("done", 1, 1)
    return done.labels, done.from_cache


def check_jobs(jobs: int | None) -> int:
    """``--jobs``: a positive count, None for one per usable CPU core."""
    from circuitspec.errors import VerifyError
    from circuitspec.verify.executors import default_jobs

    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise VerifyError(f"--jobs must be at least 1, got {jobs!r}", hint="models labelled in parallel; leave it out for one per CPU core")
    return jobs


def label_many(items: Sequence[LabelItem], *, jobs: int | None = 1, on_event=None) -> list[tuple[Labels, bool]]:
    """Label several models, ``jobs`` at a time (``verify.executors.LocalExecutor``), in input order."""
    from circuitspec.verify.executors import LocalExecutor

    jobs = check_jobs(jobs)
    out: dict[int, tuple[Labels, bool]] = {}
    for i, result in LocalExecutor(jobs).run(run_item, list(items), on_event):
        out[i] = result
    return [out[i] for i in range(len(items))]
