"""The pytest plugin without verification: registration, options, fixtures, marker, messages, reports.

Verdicts here are recorded into the session cache (``circuit_cache.put``) instead of being
measured, so these tests exercise the plugin's own logic; ``test_plugin_e2e.py`` runs real
verification on the shipped zoo.
"""

from __future__ import annotations

import json
import os
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# pytester's in-process runs drop the modules they import; C extensions (yaml, pydantic-core,
# torch) must not be imported twice, so everything the inner runs use is imported here first.
import circuitspec.render.report  # noqa: F401
import circuitspec.spec  # noqa: F401
import circuitspec.verify.orchestrate  # noqa: F401
from circuitspec.claims import CircuitSession, failure_message

pytest_plugins = ["pytester"]

# Verdict builders, shared by these tests and the pytester runs (written into their conftest).
VERDICTS = textwrap.dedent(
    '''
    from circuitspec.verify.verdict import (
        CircuitMetrics, Estimate, ModelLayout, NodeVerdict, PlacementEvidence, Verdict, VariableTest,
    )

    def est(value, low, high, n=200, method="wilson"):
        return Estimate(value=value, low=low, high=high, n=n, method=method)

    LABELS = ["D1", "D0", "OPR", "D'1", "D'0", "=", "A3", "A2", "A1", "A0"]

    def make_verdict(model, status="holds", faithfulness=0.97, hypothesis="tiny"):
        layout = ModelLayout(op="add", digits=2, n_layers=1, n_heads=1, n_ctx=10, position_labels=LABELS)
        good = NodeVerdict(
            node="SA0", variables=["SA(0)"], required=True, status="confirmed", sites=["P8.L0.H0"],
            tests=[VariableTest(variable="SA(0)", accuracy=est(0.98, 0.95, 0.99), changed=est(0.97, 0.94, 0.99), pairs=200)],
        )
        nodes = [good]
        if status != "holds":
            nodes.append(NodeVerdict(
                node="SA1", variables=["SA(1)"], required=True, status="unconfirmed", sites=["P7.L0.H0"],
                tests=[VariableTest(
                    variable="SA(1)", accuracy=est(0.41, 0.34, 0.48), changed=est(0.55, 0.48, 0.62), pairs=200,
                    example="base 19+01=+020, source 29+01=+030: predicted +030, model +020",
                )],
                runner_up=PlacementEvidence(sites=["P6.L0.H0"], score=0.12, passed=False),
                reason="failed_causal_test", detail="interchange accuracy 0.41 is below 0.80",
                candidates_considered=3,
            ))
        return Verdict(
            hypothesis=hypothesis, model=model, layout=layout, edges=[("SA0", "SA1")] if status != "holds" else [], status=status,
            summary="2/2 nodes placed" if status == "holds" else "1 of 2 required nodes unconfirmed",
            nodes=nodes,
            metrics=CircuitMetrics(faithfulness=est(faithfulness, faithfulness - 0.03, min(1.0, faithfulness + 0.02)),
                                   completeness=est(0.12, 0.08, 0.17)),
            seed=0,
        )
    '''
)
namespace: dict = {}
exec(VERDICTS, namespace)
make_verdict = namespace["make_verdict"]

TINY_SPEC = textwrap.dedent(
    """
    name: tiny
    task: add
    nodes:
      - id: SA{n}
        for_each: {n: 0..digits-1}
        computes: SA(n)
        site: head
        at: predicts A(n)
    """
)

ZOO = [("add", 2), ("add", 3), ("sub", 2)]
QUIET = ["-p", "no:hypothesispytest", "-p", "no:typeguard", "-p", "no:jaxtyping", "-p", "no:anyio", "-p", "no:cacheprovider"]  # unrelated, slow to start


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def write_cards(folder: Path) -> list[str]:
    """A zoo of cards (no weights): enough to list, select and name models."""
    from circuitspec.models.card import ModelCard, TaskSpec, default_architecture

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for op, digits in ZOO:
        card = ModelCard(name=f"{op}_d{digits}_l1_h1_t0.5K_s1", architecture=default_architecture(digits, 1, 1, width=8), task=TaskSpec(op=op, digits=digits))
        (folder / f"{card.name}.json").write_text(card.to_json())
        names.append(card.name)
    return names


@pytest.fixture
def zoo_dir(pytester: pytest.Pytester) -> Path:
    write_cards(pytester.path / "zoo")
    (pytester.path / "tiny.yaml").write_text(TINY_SPEC)
    return pytester.path / "zoo"


def test_plugin_is_registered_through_the_pytest11_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("circuitspec") == "circuitspec.pytest_plugin"


def test_options_and_fixtures(pytester: pytest.Pytester, zoo_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CIRCUITSPEC_CACHE", raising=False)
    facts = pytester.path / "facts"
    pytester.makepyfile(
        f"""
        import os

        def test_facts_cache_folder(circuit_cache):
            assert str(circuit_cache.cache_dir) == {str(facts)!r}
            assert "CIRCUITSPEC_CACHE" not in os.environ  # passed to the verify core, not through the environment

        def test_fixtures(circuit_zoo, circuit_cache, circuit_model):
            assert circuit_zoo.names == ["add_d2_l1_h1_t0.5K_s1", "add_d3_l1_h1_t0.5K_s1", "sub_d2_l1_h1_t0.5K_s1"]
            assert "add_d2_l1_h1_s1" in circuit_zoo and len(circuit_zoo) == 3
            assert circuit_cache.seed == 7 and circuit_cache.zoo is circuit_zoo
            assert circuit_cache.model_name("add_d3_l1_h1_s1") == "add_d3_l1_h1_t0.5K_s1"
            assert circuit_model == circuit_cache.model
        """
    )
    result = run(pytester, "--circuit-zoo", str(zoo_dir), "--circuit-seed", "7", "--circuit-cache", str(facts))
    result.assert_outcomes(passed=2)
    assert "CIRCUITSPEC_CACHE" not in os.environ  # restored after the session


def test_marker_parametrises_the_test_over_matching_zoo_models(pytester: pytest.Pytester, zoo_dir: Path):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.circuit(spec="tiny.yaml", models="add_*")
        def test_glob(circuit_target_name, circuit_spec):
            assert circuit_spec.name == "tiny"
            assert circuit_target_name.startswith("add_")

        @pytest.mark.circuit(spec="tiny.yaml")
        def test_applicable(circuit_target_name):
            pass

        @pytest.mark.circuit("tiny.yaml", ["sub_d2_l1_h1_s1", "add_d3*"])
        def test_list(circuit_target_name):
            pass
        """
    )
    result = run(pytester, "--circuit-zoo", str(zoo_dir), "-v", "--tb=line")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines_random(
        [
            "*test_glob?add_d2_l1_h1_t0.5K_s1? PASSED*",
            "*test_glob?add_d3_l1_h1_t0.5K_s1? PASSED*",
            "*test_applicable?add_d2_l1_h1_t0.5K_s1? PASSED*",
            "*test_applicable?add_d3_l1_h1_t0.5K_s1? PASSED*",  # the spec is about addition: no sub model
            "*test_list?sub_d2_l1_h1_t0.5K_s1? PASSED*",
            "*test_list?add_d3_l1_h1_t0.5K_s1? PASSED*",
        ]
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        (
            '@pytest.mark.circuit(spec="tiny.yaml", models="add_d9*")\ndef test_x(circuit_target): pass',
            ["*unknown model pattern 'add_d9*'*", "*allowed: add_d2_l1_h1_t0.5K_s1, add_d3_l1_h1_t0.5K_s1, sub_d2_l1_h1_t0.5K_s1*"],
        ),
        ('@pytest.mark.circuit(spec="tiny.yaml")\ndef test_x(): pass', ["*must take the circuit_target*"]),
        ('@pytest.mark.circuit(spec="nope.yaml")\ndef test_x(circuit_target): pass', ["*nope.yaml: spec file not found*"]),
        ('@pytest.mark.circuit(models="add*")\ndef test_x(circuit_target): pass', ["*needs spec=*"]),
        ("def test_x(circuit_spec): pass", ["*circuit_spec needs @pytest.mark.circuit(spec=...)*"]),
    ],
)
def test_marker_misuse_is_reported_clearly(pytester: pytest.Pytester, zoo_dir: Path, source: str, expected: list[str]):
    pytester.makepyfile("import pytest\n" + source)
    result = run(pytester, "--circuit-zoo", str(zoo_dir))
    assert result.ret != 0
    result.stdout.fnmatch_lines(expected)


def test_failure_message_lists_nodes_reasons_figures_and_report():
    verdict = make_verdict("add_d3_l1_h1_t0.5K_s1", status="fails")
    text = failure_message(verdict, "tiny holds in add_d3_l1_h1_t0.5K_s1", Path("/r/index.html"))
    assert text.splitlines() == [
        "circuit claim failed: tiny holds in add_d3_l1_h1_t0.5K_s1",
        "  hypothesis 'tiny' on add_d3_l1_h1_t0.5K_s1 (seed 0): fails, 1 of 2 required nodes unconfirmed",
        "  failing nodes:",
        "    SA1 [SA(1)]: unconfirmed at P7.L0.H0",
        "        reason: interchange accuracy 0.41 is below 0.80 (failed causal test)",
        "        SA(1) interchange accuracy 0.410 [0.340, 0.480] (n=200, wilson), answer changed 0.550 [0.480, 0.620] (n=200, wilson)",
        "          e.g. base 19+01=+020, source 29+01=+030: predicted +030, model +020",
        "        runner-up: P6.L0.H0 score 0.120 (failed)",
        "        candidates considered: 3",
        "  measured:",
        "    faithfulness 0.970 [0.940, 0.990] (n=200, wilson)",
        "    completeness 0.120 [0.080, 0.170] (n=200, wilson)",
        "  report: /r/index.html",
    ]


def test_session_cache_records_and_reports(tmp_path: Path):
    names = write_cards(tmp_path / "zoo")
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)
    session = CircuitSession(zoo=tmp_path / "zoo", report_dir=tmp_path / "out", scratch=tmp_path / "scratch")
    spec = session.hypothesis(tmp_path / "tiny.yaml")
    assert session.hypothesis(str(tmp_path / "tiny.yaml")) is spec  # read once
    session.put(make_verdict(names[0]), spec, "add_d2_l1_h1_s1")
    assert session.verdict(spec, names[0]).status == "holds"
    assert session.verify_calls == 0 and session.loads == 0  # neither verified nor loaded again
    rendered = session.write_report()
    report = json.loads(rendered.report_json.read_text())
    assert [(v["hypothesis"], v["model"]) for v in report["verdicts"]] == [("tiny", names[0])]
    assert rendered.index_html.is_file() and rendered.graphs


CONFTEST = VERDICTS + textwrap.dedent(
    """
    import pytest

    @pytest.fixture(autouse=True, scope="session")
    def _recorded(circuit_cache):
        circuit_cache.put(make_verdict("add_d2_l1_h1_t0.5K_s1"), "tiny.yaml", "add_d2_l1_h1_s1")
        circuit_cache.put(make_verdict("add_d3_l1_h1_t0.5K_s1", status="fails", faithfulness=0.9), "tiny.yaml", "add_d3_l1_h1_t0.5K_s1")
    """
)


def test_assertions_pass_and_fail_with_the_expected_message(pytester: pytest.Pytester, zoo_dir: Path, tmp_path: Path):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        from circuitspec import assert_faithful, assert_holds, assert_node

        def test_true_claim():
            verdict = assert_holds("tiny.yaml", "add_d2_l1_h1_s1")
            assert verdict.status == "holds"

        def test_false_claim():
            assert_holds("tiny.yaml", "add_d3_l1_h1_s1")

        def test_node_where_it_is():
            assert assert_node("tiny.yaml", "add_d3_l1_h1_s1", "SA0", sites=["P8.L0.H0"]).node == "SA0"

        def test_node_elsewhere():
            assert_node("tiny.yaml", "add_d2_l1_h1_s1", "SA0", sites="P9.L0.H0")

        def test_faithful_enough():
            assert assert_faithful("tiny.yaml", "add_d2_l1_h1_s1", at_least=0.95).value == 0.97

        def test_not_faithful_enough():
            assert_faithful("tiny.yaml", "add_d3_l1_h1_s1", at_least=0.95)
        """
    )
    out = tmp_path / "report"
    result = run(pytester, "--circuit-zoo", str(zoo_dir), "--circuit-report", str(out))
    result.assert_outcomes(passed=3, failed=3)
    claims = out / "claims" / "tiny"
    result.stdout.fnmatch_lines(
        [
            "*circuit claim failed: tiny holds in add_d3_l1_h1_t0.5K_s1",
            "*hypothesis 'tiny' on add_d3_l1_h1_t0.5K_s1 (seed 0): fails, 1 of 2 required nodes unconfirmed",
            "*failing nodes:",
            "*SA1 ?SA(1)?: unconfirmed at P7.L0.H0",
            "*reason: interchange accuracy 0.41 is below 0.80 (failed causal test)",
            "*SA(1) interchange accuracy 0.410 ?0.340, 0.480? (n=200, wilson)*",
            f"*report: {claims / 'add_d3_l1_h1_t0.5K_s1' / 'index.html'}",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*circuit claim failed: node SA0 of tiny is confirmed in add_d2_l1_h1_t0.5K_s1 at P9.L0.H0; it was placed at P8.L0.H0"]
    )
    result.stdout.fnmatch_lines(
        ["*circuit claim failed: faithfulness of tiny in add_d3_l1_h1_t0.5K_s1 >= 0.95 (it is 0.900)", "*faithfulness 0.900 ?0.870, 0.920?*"]
    )
    result.stdout.fnmatch_lines(["circuitspec report (2 verdicts): *index.html"])
    assert (claims / "add_d3_l1_h1_t0.5K_s1" / "index.html").is_file()
    report = json.loads((out / "report.json").read_text())
    assert sorted((v["model"], v["status"]) for v in report["verdicts"]) == [
        ("add_d2_l1_h1_t0.5K_s1", "holds"),
        ("add_d3_l1_h1_t0.5K_s1", "fails"),
    ]
    assert (out / "index.html").is_file() and (out / "junit.xml").is_file()


def test_unknown_node_is_a_spec_error(pytester: pytest.Pytester, zoo_dir: Path):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        from circuitspec import assert_node
        from circuitspec.errors import SpecError

        def test_unknown():
            with pytest.raises(SpecError, match="(?s)unknown node 'SA7'.*did you mean 'SA0'"):
                assert_node("tiny.yaml", "add_d2_l1_h1_s1", "SA7")
        """
    )
    run(pytester, "--circuit-zoo", str(zoo_dir)).assert_outcomes(passed=1)


def test_claims_need_no_pytest():
    code = "import sys, circuitspec.claims as c; print('pytest' in sys.modules, callable(c.assert_holds))"
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
