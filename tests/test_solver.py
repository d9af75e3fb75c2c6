"""The assignment solver finds the best consistent placement, not the first one."""

import itertools

from hypothesis import given, settings, strategies as st

from typing import NamedTuple

from circuitspec.match.solver import solve


class Option(NamedTuple):
    """A stand-in placement: what the solver reads of one (its sites and score)."""

    sites: tuple
    score: float


def before(a: Option, b: Option) -> bool:
    """Toy ordering: every site is an integer time step; sources come strictly earlier."""
    return max(a.sites) < min(b.sites)


def test_prefers_consistent_assignment_over_greedy_best():
    # Greedy would give A its best option (site 5), leaving B (which must come after A) nothing.
    options = {
        "A": [Option((5,), 0.99), Option((1,), 0.95)],
        "B": [Option((3,), 0.9)],
    }
    result = solve(options, [("A", "B")], before, required=["A", "B"])
    assert result.chosen["A"].sites == (1,)
    assert result.chosen["B"].sites == (3,)
    assert result.conflicted == []


def test_sites_are_not_shared():
    options = {"A": [Option((1,), 0.9)], "B": [Option((1,), 0.8), Option((2,), 0.5)]}
    result = solve(options, [], before)
    assert result.chosen["A"].sites == (1,)
    assert result.chosen["B"].sites == (2,)


def test_reports_edge_conflicts():
    options = {"A": [Option((5,), 0.9)], "B": [Option((3,), 0.9)]}
    result = solve(options, [("A", "B")], before, required=["A", "B"])
    assert len(result.chosen) == 1
    assert result.conflicted == sorted(set(options) - set(result.chosen))


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from("ABCDE"),
        st.lists(st.tuples(st.integers(0, 6), st.floats(0.1, 1.0)), max_size=3),
        min_size=1,
    ),
    st.lists(st.tuples(st.sampled_from("ABCDE"), st.sampled_from("ABCDE")), max_size=5),
)
def test_matches_brute_force(raw, edges):
    options = {n: [Option((t,), round(s, 3)) for t, s in opts] for n, opts in raw.items()}
    edges = [(a, b) for a, b in edges if a != b]
    result = solve(options, edges, before)

    def value(assign):
        return (len(assign), round(sum(o.score for o in assign.values()), 9))

    best = (-1, -1.0)
    nodes = sorted(options)
    for combo in itertools.product(*[[None, *options[n]] for n in nodes]):
        assign = {n: o for n, o in zip(nodes, combo) if o is not None}
        sites = [s for o in assign.values() for s in o.sites]
        if len(sites) != len(set(sites)):
            continue
        if any(a in assign and b in assign and not before(assign[a], assign[b]) for a, b in edges):
            continue
        best = max(best, value(assign))
    assert value(result.chosen) == best
    assert result.exhaustive
