"""pytest plugin: circuit claims as regression tests.

Active once circuitspec is installed (entry point ``pytest11``). It gives:

Fixtures
    ``circuit_zoo``      the model zoo (the shipped one, or the folder given by ``--circuit-zoo``)
    ``circuit_model``    a factory: ``circuit_model("add_d6_l2_h3_s372001")`` loads a model once per session
    ``circuit_cache``    the session's cache: models, hypotheses and verdicts, so several tests about
                         one model measure it once
    ``circuit_spec``     the hypothesis named by the test's ``circuit`` marker
    ``circuit_target`` / ``circuit_target_name``  the model (name) a ``circuit``-marked test runs on

Marker
    ``@pytest.mark.circuit(spec="specs/addition.yaml", models="add_d6_*")`` runs the test once per
    matching zoo model (test ids are the model names). ``models`` is a glob or a list of globs over
    model names (full or without ``_tNK``); left out, every zoo model the hypothesis applies to.
    Relative spec paths are read from the test file's folder, then from the rootdir.

Assertions: ``assert_holds``, ``assert_node``, ``assert_faithful`` live in ``circuitspec.claims``
(also ``circuitspec.assert_holds`` ...) and need no pytest; during a test run they use this
session (kept in ``config.stash``), so its options apply to them.

Options
    ``--circuit-zoo DIR``     models come from DIR instead of the shipped zoo
    ``--circuit-report DIR``  write every verdict of the session to DIR as ``circuitspec verify`` does
                              (report.json, junit.xml, SVG graphs and node maps, index.html)
    ``--circuit-seed N``      seed of every verification (default 0)
    ``--circuit-cache DIR``   facts cache folder of the session's verifications (default ``$CIRCUITSPEC_CACHE``
                              or ``~/.cache/circuitspec``): facts are measured once per model and reused

Example::

    import pytest
    from circuitspec import assert_holds, assert_node

    @pytest.mark.circuit(spec="specs/addition.yaml", models="add_d6_*")
    def test_addition_algorithm(circuit_spec, circuit_target):
        assert_holds(circuit_spec, circuit_target)

    def test_carry_node(circuit_model):
        assert_node("specs/addition.yaml", circuit_model("add_d6_l2_h3_s372001"), "SC(2)")
"""

from __future__ import annotations

from contextvars import Token
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from circuitspec.claims import CircuitSession, Zoo, release, use
from circuitspec.errors import CircuitSpecError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.spec.schema import Hypothesis

MARKER = "circuit"
MARKER_HELP = (
    "circuit(spec, models=None): run the test once per zoo model matching `models` "
    "(glob or list of globs; default: every model the hypothesis applies to), with fixtures "
    "circuit_spec, circuit_target and circuit_target_name"
)


# ---- pytest hooks and fixtures --------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("circuitspec", "circuit hypotheses (circuitspec)")
    group.addoption("--circuit-zoo", metavar="DIR", default=None, help="folder of models to use instead of the shipped zoo")
    group.addoption(
        "--circuit-report", metavar="DIR", default=None, help="write every verdict of the session to DIR (JSON, SVG, HTML), as `circuitspec verify` does"
    )
    group.addoption("--circuit-seed", metavar="N", type=int, default=0, help="seed of every verification (default 0)")
    group.addoption(
        "--circuit-cache", metavar="DIR", default=None, help="facts cache folder for this session (default: $CIRCUITSPEC_CACHE or ~/.cache/circuitspec)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    session = CircuitSession(
        zoo=config.getoption("circuit_zoo"),
        report_dir=config.getoption("circuit_report"),
        seed=config.getoption("circuit_seed"),
        rootdir=config.rootpath,
        cache_dir=config.getoption("circuit_cache"),
    )
    config.stash[_SESSION_KEY] = session
    config.stash[_TOKEN_KEY] = use(session)


def pytest_unconfigure(config: pytest.Config) -> None:
    token = config.stash.get(_TOKEN_KEY, None)
    if token is not None:
        release(token)
        del config.stash[_TOKEN_KEY]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cache = session.config.stash.get(_SESSION_KEY, None)
    if cache is not None and cache.report_dir is not None:
        try:
            cache.written = cache.write_report()
        except CircuitSpecError as err:  # shown in the summary; the test outcomes stand
            cache.report_error = err.render()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    cache = config.stash.get(_SESSION_KEY, None)
    written = getattr(cache, "written", None)
    if written is not None:
        terminalreporter.write_line(f"circuitspec report ({len(cache.verdicts)} verdicts): {written.index_html}")
    elif getattr(cache, "report_error", None):
        terminalreporter.write_line(f"circuitspec report could not be written: {cache.report_error}", red=True)
    elif cache is not None and cache.report_dir is not None:
        terminalreporter.write_line("circuitspec report: no circuit was verified, nothing written")


_SESSION_KEY = pytest.StashKey[CircuitSession]()
_TOKEN_KEY = pytest.StashKey[Token]()


def _session(config: pytest.Config) -> CircuitSession:
    return config.stash[_SESSION_KEY]


def _marker_args(marker: pytest.Mark) -> tuple[Any, Any]:
    kwargs = dict(marker.kwargs)
    args = list(marker.args)
    spec = kwargs.pop("spec", args.pop(0) if args else None)
    models = kwargs.pop("models", args.pop(0) if args else None)
    if spec is None or args or kwargs:
        extra = ", ".join([*map(repr, args), *kwargs])
        raise SpecError(
            "@pytest.mark.circuit needs spec= and takes only models=" + (f" (got {extra})" if extra else ""),
            hint='write @pytest.mark.circuit(spec="specs/addition.yaml", models="add_d6_*")',
        )
    return spec, models


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    where = f"@pytest.mark.circuit on {metafunc.definition.nodeid}"
    if "circuit_target_name" not in metafunc.fixturenames:
        pytest.fail(f"{where}: the test must take the circuit_target (or circuit_target_name) argument", pytrace=False)
    session = _session(metafunc.config)
    try:
        spec, models = _marker_args(marker)
        base = Path(str(metafunc.definition.fspath)).parent
        h = session.hypothesis(spec, base)
        names = session.zoo.select(models, h)
        for name in names:
            session.plan(h, name)
    except CircuitSpecError as err:
        pytest.fail(f"{where}: {err.render()}", pytrace=False)
    metafunc.parametrize("circuit_target_name", names, ids=names)


@pytest.fixture(scope="session", autouse=True)
def circuit_cache(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> CircuitSession:
    """The session's cache of models, hypotheses and verdicts (also used by the assert_* functions).

    Autouse, so that failed claims' reports go under pytest's basetemp (made only when one fails).
    """
    session = _session(pytestconfig)
    session.scratch = lambda: tmp_path_factory.getbasetemp() / "circuitspec"
    return session


@pytest.fixture(scope="session")
def circuit_zoo(circuit_cache: CircuitSession) -> Zoo:
    """The model zoo: the shipped one, or the folder given by ``--circuit-zoo``."""
    return circuit_cache.zoo


@pytest.fixture(scope="session")
def circuit_model(circuit_cache: CircuitSession):
    """A factory: ``circuit_model(name_or_path)`` returns the loaded ``Model`` (once per session)."""
    return circuit_cache.model


@pytest.fixture
def circuit_target_name(request: pytest.FixtureRequest) -> str:
    """The model name a ``circuit``-marked test runs on (set by the marker)."""
    pytest.fail(f"{request.node.nodeid}: circuit_target_name is set by @pytest.mark.circuit(spec=..., models=...)", pytrace=False)


@pytest.fixture
def circuit_target(circuit_target_name: str, circuit_cache: CircuitSession):
    """The ``Model`` a ``circuit``-marked test runs on."""
    return circuit_cache.model(circuit_target_name)


@pytest.fixture
def circuit_spec(request: pytest.FixtureRequest, circuit_cache: CircuitSession) -> "Hypothesis":
    """The hypothesis named by the test's ``@pytest.mark.circuit(spec=...)``."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        pytest.fail(f"{request.node.nodeid}: circuit_spec needs @pytest.mark.circuit(spec=...)", pytrace=False)
    spec, _ = _marker_args(marker)
    return circuit_cache.hypothesis(spec, Path(str(request.node.fspath)).parent)
