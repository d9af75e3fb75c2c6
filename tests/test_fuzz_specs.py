"""The spec fuzzer in the suite (a short, derandomized sample; ``benchmarks/fuzz_specs.py --n 10000``
runs the long one): every mutant loads or raises a located ``CircuitSpecError``, and nothing else,
within the time and memory bounds of ``spec_fuzz.run_one``."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from spec_fuzz import SOURCES, make_fixture, mutants, run_one


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    return make_fixture(tmp_path_factory.mktemp("fuzz"))


@settings(
    max_examples=600, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(mutants())
def test_fuzzed_specs_load_or_raise_a_located_spec_error(fuzz_base, mutant):
    _, text = mutant
    outcome = run_one(text, fuzz_base)
    assert outcome.ok, f"{outcome.kind}: {outcome.detail}\n--- spec:\n{text[:2000]}"


def test_every_shipped_spec_loads_in_the_fuzz_folder(fuzz_base):
    for name, text in SOURCES.items():
        assert run_one(text, fuzz_base).kind == "loaded", name
