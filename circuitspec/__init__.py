"""circuitspec: declare, match and verify circuit hypotheses in transformers trained on arithmetic.

The public API. ``import circuitspec`` is light (no torch): every name below loads its
module on first use.

Hypotheses
    ``load_hypothesis(path)``           read a YAML spec (``specs/addition.yaml``)
    ``hypothesis(name, task=..., ...)`` write one in Python (same fields as YAML);
                                        ``HypothesisBuilder`` is the fluent form
    ``Hypothesis``                      the schema (pydantic)
Models
    ``load_model(name_or_path)``        a shipped zoo model, a card/weights file or a folder
    ``list_zoo(folder=None)``           the cards of a zoo (default: the shipped one)
    ``load_zoo(folder=None, models=None)``  the models of a zoo, optionally filtered by globs
Verification
    ``verify(hypothesis, model, seed=0)``     one Verdict
    ``verify_many(hypotheses, models, ...)``  a Report over many models
    ``scan(model, ...)``                      which sites matter in a model (its facts)
    ``label(model, ...)``                     what every useful site computes (cached ``Labels``)
    ``suggest(model, from_spec=None, ...)``   a hypothesis proposed from the labels (``Suggestion.text``)
Rendering
    ``write_report(report, out)``, ``load_report(path)``, ``graph_svg(verdict)``,
    ``node_map_svg(verdict)``
Testing
    ``assert_holds``, ``assert_node``, ``assert_edge``, ``assert_faithful`` (``circuitspec.claims``: no pytest needed;
    the pytest plugin adds fixtures and a marker) and the hypothesis strategies in
    ``circuitspec.strategies``.

Example (``tests/test_api.py`` and ``examples/tutorial.py`` run these calls)::

    import circuitspec as cs
    h = cs.load_hypothesis("specs/addition_1layer.yaml")
    verdict = cs.verify(h, "add_d5_l1_h3_t6K_s372001")
    print(verdict.status, verdict.summary)          # holds 16/16 required nodes confirmed
    report = cs.verify_many(["specs/addition.yaml", h], ["add_d5_l2_h3_s372001", "add_d6_l2_h3_s372001"],
                            out="report/")          # report/index.html, report.json, SVGs
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The ``verify`` function below shares its name with the ``circuitspec.verify`` subpackage.
# Importing the subpackage first (pydantic only, no torch) makes the function win: the import
# system sets ``circuitspec.verify`` to the module only when the module is first loaded.
# The subpackage stays reachable as ``from circuitspec.verify import Verdict`` etc.
import circuitspec.verify as _verify_package  # noqa: F401
from circuitspec.errors import CircuitSpecError, EngineError, ModelError, SpecError, TaskError

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.models.card import ModelCard
    from circuitspec.models.zoo import Model
    from circuitspec.spec.schema import Hypothesis
    from circuitspec.verify.verdict import Report, Verdict

from circuitspec.version import __version__

# name -> (module, attribute): loaded on first access.
_LAZY = {
    "Hypothesis": ("circuitspec.spec.schema", "Hypothesis"),
    "HypothesisBuilder": ("circuitspec.spec.builder", "HypothesisBuilder"),
    "EACH_DIGIT": ("circuitspec.spec.builder", "EACH_DIGIT"),
    "EACH_ANSWER_DIGIT": ("circuitspec.spec.builder", "EACH_ANSWER_DIGIT"),
    "attends": ("circuitspec.spec.builder", "attends"),
    "expand": ("circuitspec.spec.expand", "expand"),
    "Model": ("circuitspec.models.zoo", "Model"),
    "ModelCard": ("circuitspec.models.card", "ModelCard"),
    "ArithmeticTask": ("circuitspec.tasks.arithmetic", "ArithmeticTask"),
    "Site": ("circuitspec.engine.sites", "Site"),
    "Engine": ("circuitspec.engine.runner", "Engine"),
    "Intervention": ("circuitspec.engine.interventions", "Intervention"),
    "Facts": ("circuitspec.engine.facts", "Facts"),
    "Labels": ("circuitspec.match.label", "Labels"),
    "Verdict": ("circuitspec.verify.verdict", "Verdict"),
    "Report": ("circuitspec.verify.verdict", "Report"),
    "write_report": ("circuitspec.render.report", "write_report"),
    "load_report": ("circuitspec.render.report", "load_report"),
    "assert_holds": ("circuitspec.claims", "assert_holds"),
    "assert_node": ("circuitspec.claims", "assert_node"),
    "assert_edge": ("circuitspec.claims", "assert_edge"),
    "assert_faithful": ("circuitspec.claims", "assert_faithful"),
}
_SUBMODULES = (
    "strategies", "tasks", "models", "engine", "spec", "match", "verify", "render", "claims", "pytest_plugin", "errors", "vocabulary",
)

__all__ = [
    "__version__",
    "CircuitSpecError",
    "TaskError",
    "ModelError",
    "SpecError",
    "EngineError",
    "load_hypothesis",
    "hypothesis",
    "load_model",
    "list_zoo",
    "load_zoo",
    "verify",
    "verify_many",
    "scan",
    "label",
    "suggest",
    "graph_svg",
    "node_map_svg",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"circuitspec.{name}")
    raise AttributeError(f"module 'circuitspec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


# ---- hypotheses -----------------------------------------------------------------------------


def load_hypothesis(path: str | Path) -> "Hypothesis":
    """Read a hypothesis from a YAML spec file (SpecError with file, line and hint if it is wrong).

    >>> import circuitspec as cs
    >>> h = cs.load_hypothesis("specs/addition.yaml")  # relative to the repository root
    >>> h.name, h.task
    ('addition', 'add')
    """
    from circuitspec.spec.schema import Hypothesis

    return Hypothesis.load(path)


def hypothesis(name: str, *, task: str, **fields: Any) -> "Hypothesis":
    """Write a hypothesis in Python: the same fields as a YAML spec (nodes as dicts).

    >>> import circuitspec as cs
    >>> h = cs.hypothesis("base-add", task="add", nodes=[
    ...     {"id": "SA{n}", "computes": "SA(n)", "site": "head", "for_each": {"n": "0..digits-1"}}])
    >>> sorted(cs.expand(h, cs.spec.make_shape("add", 3, 2, 3)))
    ['SA0', 'SA1', 'SA2']
    """
    from circuitspec.spec.schema import Hypothesis

    return Hypothesis.build(name, task=task, **fields)


def _hypothesis(spec: Any) -> "Hypothesis":
    from circuitspec.spec.schema import Hypothesis

    if isinstance(spec, Hypothesis):
        return spec
    if isinstance(spec, (str, Path)):
        return load_hypothesis(spec)
    raise SpecError(f"expected a Hypothesis or the path of a spec file, got {type(spec).__name__}")


# ---- models ---------------------------------------------------------------------------------


def load_model(name_or_path: str | Path, *, folder: str | Path | None = None, device: str = "cpu") -> "Model":
    """Load a model: a shipped zoo name (with or without ``_tNK``), a card/weights file or a folder.

    The model holds ``.bridge`` (a TransformerLens bridge), ``.card`` and ``.task``.
    """
    from circuitspec.models.zoo import load

    return load(name_or_path, folder=folder, device=device)


def list_zoo(folder: str | Path | None = None) -> "list[ModelCard]":
    """The cards of every model in ``folder`` (default: the shipped zoo), sorted by name; no torch needed."""
    from circuitspec.models.zoo import list_zoo as _list

    return _list(folder)


def load_zoo(folder: str | Path | None = None, models: str | Sequence[str] | None = None) -> "list[Model]":
    """Load the models of a zoo, optionally only those ``models`` selects (names or globs, as
    ``circuitspec verify --models`` takes them)."""
    from circuitspec.verify.select import resolve_models

    selectors = [models] if isinstance(models, str) else models
    return [load_model(ref.path) for ref in resolve_models(selectors, zoo=folder)]


def _model(model: Any) -> "Model":
    if isinstance(model, (str, Path)):
        return load_model(model)
    return model


# ---- verification ---------------------------------------------------------------------------


def verify(hypothesis: Any, model: Any, *, seed: int = 0, labels: bool = False) -> "Verdict":
    """Verify one hypothesis (a Hypothesis or a spec path) on one model (a Model or a name).

    Returns a ``Verdict``: per node confirmed / unconfirmed / not placed with the sites that
    play it, interchange accuracies and faithfulness with 95% intervals; ``.to_json()``.
    ``labels``: also label the model (cached) and record what each useful site no node holds
    computes (``.site_labels``, shown in the node map and the gap report).
    """
    from circuitspec.verify.core import verify as _verify

    return _verify(_hypothesis(hypothesis), _model(model), seed=seed, labels=labels)


def verify_many(
    hypotheses: Any | Sequence[Any], models: Any | Sequence[Any], *, seed: int = 0, out: str | Path | None = None, labels: bool = False
) -> "Report":
    """Verify hypotheses on models (each model's facts measured once); with ``out`` write the report.

    ``hypotheses``/``models`` take one item or a list / tuple of them (spec paths or Hypothesis
    objects; model names, globs, card paths or Model objects). The same core as
    ``circuitspec verify``: the same inputs give the same report.json, and with ``out`` finished
    verdicts are saved there and reused by a rerun.
    """
    from circuitspec.verify import orchestrate
    from circuitspec.verify.select import ModelRef, resolve_models

    hs = list(hypotheses) if isinstance(hypotheses, (list, tuple)) else [hypotheses]
    ms = list(models) if isinstance(models, (list, tuple)) else [models]
    names = [str(m) for m in ms if isinstance(m, (str, Path))]
    refs = resolve_models(names) if names else []
    refs += [ModelRef.of(m) for m in ms if not isinstance(m, (str, Path))]
    from circuitspec.render.report import write_report

    finish = None if out is None else (lambda report: write_report(report, out))
    report, _ = orchestrate.verify_many([_hypothesis(h) for h in hs], refs, seed=seed, out=out, finish=finish, labels=labels)
    return report


def scan(model: Any, *, seed: int = 0, cache_dir: str | Path | None = None, use_cache: bool = True, **params: Any):
    """Measure a model's facts: which sites matter, for which answer digits and classes.

    Every head and MLP at every position is mean-ablated on class-stratified questions;
    ``params`` change ``circuitspec.engine.facts.FactsParams.preset`` (``questions=500``,
    ``probe_questions=1200`` for linear probes ...). The preset is the one ``verify`` and
    ``circuitspec scan`` use, so a scan after a verification (or before it) reuses the same cached facts:
    they are stored on disk (``cache_dir``, else ``$CIRCUITSPEC_CACHE``, else
    ``~/.cache/circuitspec``) under a key of everything they depend on. Returns ``Facts``
    (``.useful_sites``, ``.site("P16.L0.H1").impacts`` ...).
    """
    from circuitspec.engine.cache import JsonCache
    from circuitspec.engine.facts import FactsParams, load_or_compute
    from circuitspec.engine.runner import Engine

    engine = Engine(_model(model), seed=seed)
    return load_or_compute(engine, FactsParams.preset(seed, **params), cache=JsonCache(cache_dir), use_cache=use_cache)


def label(model: Any, *, seed: int = 0, cache_dir: str | Path | None = None, use_cache: bool = True, **params: Any):
    """What every useful site of a model computes: each head and MLP that matters, interchange-tested
    on every variable it could carry (``circuitspec.match.label``).

    ``params`` change ``LabelParams`` (``pairs=256``, ``min_accuracy=0.9``, ``max_heads=2``,
    ``neurons=True``). Labels are cached beside the model's facts (same key scheme), so a second
    call, ``circuitspec label`` and ``circuitspec scan`` reuse them. Returns ``Labels``
    (``.sites``: one ``SiteLabel`` per site, ``.site("P16.L1.MLP").variables`` ...).
    """
    from circuitspec.verify.labels import label_model, params_from

    checked = params_from(seed=seed, **params)  # before loading the model: bad options fail fast
    done = label_model(_model(model), seed=seed, params=checked, cache_dir=cache_dir, use_cache=use_cache)
    return done.labels


def suggest(model: Any, *, from_spec: str | Path | None = None, seed: int = 0, cache_dir: str | Path | None = None, use_cache: bool = True):
    """A hypothesis proposed from a model's labels (``label``, cached), every node confirmed by its
    interchange test and every edge by path patching (``circuitspec.verify.suggest``).

    Returns a ``Suggestion``: ``.text`` is a spec that loads with ``load_hypothesis`` (or, with
    ``from_spec``, a unified diff adding only what that spec lacks; the file is never written),
    ``.nodes`` / ``.edges`` what it proposes, ``.dropped`` / ``.unexplained`` what it leaves out.
    """
    from circuitspec.verify.suggest import suggest as _suggest

    return _suggest(_model(model), from_spec=from_spec, seed=seed, cache_dir=cache_dir, use_cache=use_cache)


# ---- rendering ------------------------------------------------------------------------------


def graph_svg(verdict: "Verdict", *, style: str = "grid") -> bytes:
    """SVG of the hypothesis graph with each node labelled by its sites and coloured by status.

    ``style``: ``grid`` (on the model's positions and layers, no system program needed) or ``dot``
    (laid out by graphviz's ``dot``, which must be installed)."""
    from circuitspec.render.graph import verdict_svg

    return verdict_svg(verdict, style=style)


def node_map_svg(verdict: "Verdict") -> bytes:
    """SVG of the paper's node map: positions x layers/heads, each cell the node it plays."""
    from circuitspec.render.nodemap import node_map_svg as draw

    return draw(verdict)
