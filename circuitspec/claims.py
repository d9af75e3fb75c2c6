"""Circuit claims without pytest: sessions of models and verdicts, and the ``assert_*`` checks.

``assert_holds(spec, model)``, ``assert_node(spec, model, node_id, sites=...)`` and
``assert_faithful(spec, model, at_least=...)`` verify through the one verify core
(``verify.orchestrate``) and raise ``AssertionError`` with the failing nodes, the reason, the
measured figures with their 95% intervals and the folder a report of the claim was written to.
``spec`` is a path or a ``Hypothesis``; ``model`` a name, a path or a ``Model``.

A ``CircuitSession`` loads each model once and verifies each (hypothesis, model, seed) once;
hypotheses announced for a model (``plan``) are verified together, so its facts are measured
once. The checks use the session ``use`` made current (the pytest plugin makes its own current
for a test run), else a default one. Plain Python needs no pytest::

    from circuitspec.claims import assert_holds
    assert_holds("specs/addition_1layer.yaml", "add_d5_l1_h3_t6K_s372001")
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitspec.errors import CircuitSpecError, ModelError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.models.card import ModelCard
    from circuitspec.spec.schema import Hypothesis
    from circuitspec.verify.verdict import EdgeVerdict, Estimate, NodeVerdict, Verdict

log = logging.getLogger(__name__)

__all__ = [
    "CircuitSession",
    "Zoo",
    "assert_faithful",
    "assert_holds",
    "assert_node",
    "current_session",
    "failure_message",
    "node_message",
    "release",
    "use",
]


# ---- the zoo --------------------------------------------------------------------------------


@dataclass
class Zoo:
    """A folder of models (NAME.json + NAME.safetensors); ``folder=None`` is the shipped zoo."""

    folder: Path | None = None
    _session: "CircuitSession | None" = field(default=None, repr=False, compare=False)
    _cards: "list[ModelCard] | None" = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> Path:
        from circuitspec.models.zoo import zoo_dir

        return self.folder if self.folder is not None else zoo_dir()

    def cards(self) -> "list[ModelCard]":
        """Every model card in the zoo, sorted by name (read once)."""
        if self._cards is None:
            from circuitspec.models.zoo import list_zoo

            self._cards = list_zoo(self.folder)
        return self._cards

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cards()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.cards())

    def __contains__(self, name: object) -> bool:
        return any(name in (c.name, c.short_name) for c in self.cards())

    def select(self, models: str | Sequence[str] | None = None, hypothesis: "Hypothesis | None" = None) -> list[str]:
        """Names of the models matching ``models`` (globs over full or short names, in the order given).

        Without ``models``: every model ``hypothesis`` applies to (all models if it is None).
        A pattern that matches no model is an error that lists the zoo.
        """
        from circuitspec.spec.shape import applies_to
        from circuitspec.verify.select import matching

        cards = self.cards()
        if models is None:
            return [c.name for c in cards if hypothesis is None or applies_to(hypothesis, c)]
        chosen: list[str] = []
        for pattern in [models] if isinstance(models, str) else list(models):
            chosen.extend(c.name for c in matching(cards, pattern, where=str(self.path)) if c.name not in chosen)
        return chosen

    def load(self, name: str):
        """Load a model of this zoo (cached by the session when there is one)."""
        session = self._session or current_session()
        return session.model(name)


# ---- the session cache ----------------------------------------------------------------------


def _spec_key(h: "Hypothesis") -> str:
    return h.name + ":" + hashlib.sha256(h.model_dump_json().encode()).hexdigest()[:16]


class CircuitSession:
    """Models, hypotheses and verdicts of one test session.

    A model is loaded once; a (hypothesis, model, seed) is verified once. Hypotheses that
    ``circuit`` markers pair with a model are verified together, in one call of
    ``verify_model``, the first time any of them is asked for, so the model's facts are
    measured once for all of them.
    """

    def __init__(
        self,
        zoo: str | os.PathLike | None = None,
        report_dir: str | os.PathLike | None = None,
        seed: int = 0,
        scratch: "str | os.PathLike | Callable[[], Path] | None" = None,
        rootdir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.zoo = Zoo(Path(zoo).resolve() if zoo is not None else None, _session=self)
        self.report_dir = Path(report_dir).resolve() if report_dir is not None else None
        self.seed = seed
        self._scratch = scratch  # a folder, or a function giving one (called when first needed)
        self.rootdir = Path(rootdir) if rootdir is not None else None
        self.cache_dir = Path(cache_dir).resolve() if cache_dir is not None else None  # facts; None: the default cache
        self._order: list[str] = []  # hypothesis names in the order first seen (the report's order)
        self._models: dict[str, Any] = {}
        self._names: dict[str, str] = {}
        self.loads = 0  # models loaded from disk
        self._specs: dict[Path, Hypothesis] = {}
        self._verdicts: dict[tuple[str, str, int], Verdict] = {}
        self._planned: dict[str, dict[str, Hypothesis]] = {}
        self.verify_calls = 0  # calls into verify / verify_model (what the cache saves)
        self.written = None  # the session report, once written
        self.report_error: str | None = None

    # -- inputs
    def _load_args(self, key: str) -> tuple[str, dict]:
        looks_like_path = "/" in key or key.endswith((".json", ".safetensors")) or Path(key).is_dir()
        if self.zoo.folder is not None and not looks_like_path:
            return key, {"folder": self.zoo.folder}
        return key, {}

    def model_name(self, model: Any) -> str:
        """The card name of a model given by name, path or object (reads only its card)."""
        if not isinstance(model, (str, os.PathLike)):
            return self.model(model).name
        key = str(model)
        if key in self._models:
            return self._models[key].name
        if key not in self._names:
            from circuitspec.models.store import read_card
            from circuitspec.models.zoo import resolve

            name, kwargs = self._load_args(key)
            self._names[key] = read_card(resolve(name, **kwargs)).name
        return self._names[key]

    def model(self, model: Any):
        """A ``Model`` from a name or path (loaded once), or the given Model itself."""
        if not isinstance(model, (str, os.PathLike)):
            if not hasattr(model, "card") or not hasattr(model, "bridge"):
                raise ModelError(f"expected a model name or a circuitspec Model, got {type(model).__name__}")
            self._models.setdefault(model.name, model)
            return model
        key = str(model)
        if key not in self._models:
            canonical = self.model_name(key)  # one load per model, however it is named
            if canonical not in self._models:
                from circuitspec.models.zoo import load

                name, kwargs = self._load_args(key)
                self._models[canonical] = load(name, **kwargs)
                self.loads += 1
            self._models[key] = self._models[canonical]
        return self._models[key]

    def hypothesis(self, spec: Any, base_dir: str | os.PathLike | None = None) -> "Hypothesis":
        """A ``Hypothesis`` from a path (read once) or the given object.

        Relative paths are tried against ``base_dir``, the rootdir and the working directory.
        """
        from circuitspec.spec.schema import Hypothesis

        if isinstance(spec, Hypothesis):
            return self._seen(spec)
        if not isinstance(spec, (str, os.PathLike)):
            raise SpecError(f"expected a spec file path or a Hypothesis, got {type(spec).__name__}")
        path = Path(spec)
        if not path.is_absolute():
            for folder in (base_dir, self.rootdir, Path.cwd()):
                if folder is not None and (Path(folder) / path).exists():
                    path = Path(folder) / path
                    break
        path = path.resolve()
        if path not in self._specs:
            if not path.exists():
                raise SpecError("spec file not found", file=str(spec), hint="give a path relative to the test file, the rootdir or the working directory")
            self._specs[path] = Hypothesis.load(path)
        return self._seen(self._specs[path])

    def _seen(self, h: "Hypothesis") -> "Hypothesis":
        if h.name not in self._order:
            self._order.append(h.name)
        return h

    def plan(self, spec: Any, model_name: str, base_dir: str | os.PathLike | None = None) -> "Hypothesis":
        """Announce that ``spec`` will be verified on ``model_name`` (batched with the others)."""
        h = self.hypothesis(spec, base_dir)
        self._planned.setdefault(model_name, {})[_spec_key(h)] = h
        return h

    # -- verdicts
    def verdict(self, spec: Any, model: Any, seed: int | None = None) -> "Verdict":
        """The verdict of ``spec`` on ``model`` (computed once per session, by the verify core)."""
        h = self.hypothesis(spec)
        name = self.model_name(model)
        seed = self.seed if seed is None else seed
        key = (_spec_key(h), name, seed)
        if key not in self._verdicts:
            m = self.model(model)
            planned = self._planned.get(m.name, {})
            todo = [p for k, p in planned.items() if (k, m.name, seed) not in self._verdicts] if key[0] in planned else [h]
            self.verify_calls += 1
            for p, v in zip(todo, self._verify(m, todo, seed)):
                self._verdicts[(_spec_key(p), m.name, seed)] = v
        return self._verdicts[key]

    def _verify(self, model: Any, hypotheses: "list[Hypothesis]", seed: int) -> "list[Verdict]":
        """One model's hypotheses through the verify core's work unit (as ``circuitspec verify`` runs them)."""
        from circuitspec.verify.orchestrate import WorkItem, run_item
        from circuitspec.verify.select import ModelRef
        from circuitspec.verify.verdict import Verdict

        cache = str(self.cache_dir) if self.cache_dir is not None else None
        item = WorkItem(ModelRef.of(model), tuple(hypotheses), seed, cache_dir=cache)
        return [Verdict.model_validate_json(text) for text in run_item(item)]

    def put(self, verdict: "Verdict", spec: Any, model: Any | None = None) -> None:
        """Record a verdict measured elsewhere (e.g. loaded from a saved report)."""
        h = self.hypothesis(spec)
        name = self.model_name(model) if model is not None else verdict.model
        self._verdicts[(_spec_key(h), name, verdict.seed)] = verdict

    @property
    def verdicts(self) -> "list[Verdict]":
        """Every verdict of the session, in the order it was measured."""
        return list(self._verdicts.values())

    # -- reports
    @property
    def scratch(self) -> Path:
        """Where failed claims' reports go without ``--circuit-report`` (pytest's basetemp)."""
        if callable(self._scratch):
            try:
                self._scratch = Path(self._scratch())
            except Exception:  # noqa: BLE001 - an unusable basetemp falls back to a temp dir
                self._scratch = None
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="circuitspec-"))
        return Path(self._scratch)

    @scratch.setter
    def scratch(self, where: "str | os.PathLike | Callable[[], Path] | None") -> None:
        self._scratch = where  # a folder, or a function giving one (called when first needed)

    def _report(self, verdicts: "list[Verdict]"):
        from circuitspec.verify.orchestrate import build_report

        seeds = {v.seed for v in verdicts}
        return build_report(verdicts, self._order, seeds.pop() if len(seeds) == 1 else self.seed)

    def claim_report(self, verdict: "Verdict") -> Path:
        """Write one verdict's report (JSON, SVGs, HTML) and return the file to open."""
        from circuitspec.atomic import atomic_write
        from circuitspec.render.files import slug
        from circuitspec.render.report import report_json, write_report

        base = (self.report_dir / "claims") if self.report_dir is not None else self.scratch
        folder = base / slug(verdict.hypothesis) / slug(verdict.model)
        report = self._report([verdict])
        try:
            return write_report(report, folder).index_html
        except CircuitSpecError as err:  # e.g. graphviz missing: the JSON still says everything
            log.warning("could not render the report: %s", err)
            return atomic_write(folder / "report.json", report_json(report))

    def write_report(self, folder: str | os.PathLike | None = None):
        """Write every verdict of the session to ``folder`` (default ``--circuit-report``)."""
        from circuitspec.render.report import write_report

        folder = folder if folder is not None else self.report_dir
        if folder is None or not self._verdicts:
            return None
        return write_report(self._report(self.verdicts), folder)


_ACTIVE: ContextVar["CircuitSession | None"] = ContextVar("circuitspec_session", default=None)
_DEFAULT: list[CircuitSession] = []  # the session of code that runs outside any pytest session


def current_session() -> CircuitSession:
    """The session ``use`` made current (the pytest plugin's, during a test run), else a default
    one (shipped zoo, seed 0) made on first use."""
    session = _ACTIVE.get()
    if session is not None:
        return session
    if not _DEFAULT:
        _DEFAULT.append(CircuitSession())
    return _DEFAULT[0]


def use(session: CircuitSession | None) -> Token:
    """Make ``session`` the one the ``assert_*`` functions use; ``release(token)`` undoes it."""
    return _ACTIVE.set(session)


def release(token: Token) -> None:
    """Undo ``use``."""
    _ACTIVE.reset(token)


# ---- failure messages -----------------------------------------------------------------------


def _est(est: "Estimate | None") -> str:
    if est is None:
        return "not measured"
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}] (n={est.n}, {est.method})"


def node_message(node: "NodeVerdict") -> list[str]:
    """Lines describing one node: status, sites, reason, every causal test with its interval."""
    from circuitspec.render.style import site_label
    from circuitspec.render.summary import reason_text

    head = f"{node.node} [{', '.join(node.variables)}]: {node.status.replace('_', ' ')}"
    if node.sites:
        head += f" at {site_label(node.sites)}"
    if not node.required:
        head += " (optional)"
    lines = [head]
    reason = reason_text(node)
    if reason:
        code = f" ({node.reason.replace('_', ' ')})" if node.reason and node.detail else ""
        lines.append(f"    reason: {reason}{code}")
    for t in node.tests:
        lines.append(f"    {t.variable} interchange accuracy {_est(t.accuracy)}, answer changed {_est(t.changed)}")
        if t.example:
            lines.append(f"      e.g. {t.example}")
    if node.runner_up is not None:
        r = node.runner_up
        lines.append(f"    runner-up: {site_label(r.sites)} score {r.score:.3f} ({'passed' if r.passed else 'failed'})")
    if node.candidates_considered:
        lines.append(f"    candidates considered: {node.candidates_considered}")
    return lines


def failure_message(verdict: "Verdict", claim: str, report: Path | None, *, nodes: "Iterable[NodeVerdict] | None" = None) -> str:
    """The text of a failed circuit assertion (see the module docstring for what it holds)."""
    from circuitspec.render.summary import edge_text, failing_edges, failing_nodes

    lines = [
        f"circuit claim failed: {claim}",
        f"  hypothesis {verdict.hypothesis!r} on {verdict.model} (seed {verdict.seed}): {verdict.status.replace('_', ' ')}"
        + (f", {verdict.summary}" if verdict.summary else ""),
    ]
    shown = list(failing_nodes(verdict) if nodes is None else nodes)
    if shown:
        lines.append("  failing nodes:")
        for node in shown:
            lines.extend("    " + line for line in node_message(node))
    edges = failing_edges(verdict) if nodes is None else []
    if edges:
        lines.append("  failing edges (path patching):")
        for e in edges:
            lines.append(f"    {edge_text(e)}")
            if e.example:
                lines.append(f"      e.g. {e.example}")
    if not shown and not edges and verdict.status != "holds":
        lines.append("  no required node or edge failed: the circuit-level checks did")
    m = verdict.metrics
    lines.append("  measured:")
    lines.append(f"    faithfulness {_est(m.faithfulness)}")
    lines.append(f"    completeness {_est(m.completeness)}")
    if m.clean_accuracy is not None:
        lines.append(f"    clean accuracy {_est(m.clean_accuracy)}")
    if m.minimality:
        worst = sorted(m.minimality.items(), key=lambda kv: kv[1])[:5]
        lines.append("    minimality (faithfulness drop without the node): " + ", ".join(f"{k} {v:+.3f}" for k, v in worst))
    if report is not None:
        lines.append(f"  report: {report}")
    return "\n".join(lines)


def _fail(verdict: "Verdict", claim: str, session: CircuitSession, nodes=None) -> None:
    try:
        report = session.claim_report(verdict)
    except OSError as err:  # an unwritable folder must not hide the failure itself
        log.warning("could not write the report: %s", err)
        report = None
    __tracebackhide__ = True
    raise AssertionError(failure_message(verdict, claim, report, nodes=nodes))


# ---- assertions -----------------------------------------------------------------------------


def assert_holds(spec: Any, model: Any, *, seed: int | None = None) -> "Verdict":
    """Assert that hypothesis ``spec`` holds in ``model``; returns the verdict.

    ``spec``: a spec file path or a ``Hypothesis``; ``model``: a name, a path or a ``Model``.
    """
    __tracebackhide__ = True
    session = current_session()
    verdict = session.verdict(spec, model, seed)
    if verdict.status != "holds":
        _fail(verdict, f"{verdict.hypothesis} holds in {verdict.model}", session)
    return verdict


def assert_node(
    spec: Any, model: Any, node_id: str, *, sites: str | Iterable[str] | None = None, seed: int | None = None
) -> "NodeVerdict":
    """Assert that node ``node_id`` is confirmed (and, with ``sites``, placed exactly there).

    ``sites`` are written as the paper does: ``"P16.L0.H1"`` or a list of them.
    """
    __tracebackhide__ = True
    from circuitspec.engine.sites import parse_sites

    session = current_session()
    verdict = session.verdict(spec, model, seed)
    node = verdict.node(node_id)  # an unknown id is a SpecError with 'did you mean'
    claim = f"node {node_id} of {verdict.hypothesis} is confirmed in {verdict.model}"
    if sites is not None:
        wanted = sorted(parse_sites([sites] if isinstance(sites, str) else list(sites)))
        got = sorted(parse_sites(node.sites))
        claim += " at " + " ".join(map(str, wanted))
        if node.status != "confirmed" or wanted != got:
            where = " ".join(map(str, got)) or "nowhere"
            _fail(verdict, f"{claim}; it was placed at {where}", session, nodes=[node])
    elif node.status != "confirmed":
        _fail(verdict, claim, session, nodes=[node])
    return node


def assert_edge(spec: Any, model: Any, source: str, target: str, *, seed: int | None = None) -> "EdgeVerdict":
    """Assert that edge ``source -> target`` is confirmed by path patching (``match.edges``)."""
    __tracebackhide__ = True
    session = current_session()
    verdict = session.verdict(spec, model, seed)
    edge = verdict.edge(source, target)  # an unknown edge names the ones there are
    if edge.status != "confirmed":
        from circuitspec.render.summary import edge_text

        claim = f"edge {source} -> {target} of {verdict.hypothesis} is confirmed in {verdict.model}"
        _fail(verdict, f"{claim}; it is {edge_text(edge)}", session, nodes=[])
    return edge


def assert_faithful(spec: Any, model: Any, *, at_least: float, seed: int | None = None) -> "Estimate":
    """Assert that the circuit's faithfulness (its measured value) is at least ``at_least``.

    Faithfulness is the model's accuracy with every site outside the placed circuit
    mean-ablated; the message gives its 95% interval.
    """
    __tracebackhide__ = True
    if not 0.0 <= at_least <= 1.0:
        raise CircuitSpecError(f"at_least must be a share between 0 and 1, got {at_least!r}")
    session = current_session()
    verdict = session.verdict(spec, model, seed)
    est = verdict.metrics.faithfulness
    if est is None or est.value < at_least:
        got = "was not measured" if est is None else f"is {est.value:.3f}"
        _fail(verdict, f"faithfulness of {verdict.hypothesis} in {verdict.model} >= {at_least} (it {got})", session)
    return est
