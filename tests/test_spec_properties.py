"""Property tests of the hypothesis language (hypothesis, derandomized so CI is reproducible).

- random valid hypotheses survive YAML -> object -> YAML -> object;
- thousands of malformed or mutated spec files raise only SpecError, always with the file,
  line and column (never a KeyError, a pydantic ValidationError, a RecursionError ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuitspec.errors import SpecError
from circuitspec.spec import Hypothesis, expand, loads, make_shape
from spec_fuzz import mutate_subtree

SPECS = Path(__file__).resolve().parent.parent / "specs"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ----------------------------------------------------------------------------- valid hypotheses

RANGES = ["0..digits-1", "1..digits-1", "0..digits", "digits-1", [0, 1], "0..min(2, digits-1)"]
VARS = ["SA(n)", "SC(n)", "SS(n)", "ST(n)", "SV(n)", "SA(n-1)", "A(n)", "A(n+1)", "OPR"]
POSITIONS = ["D(n)", "D'(n)", "OPR", "=", "sign", "A(n)", "predicts A(n)", "D'(1)..sign", "P(0)", "D(digits-1)..D(0)", "predicts sign"]
LAYERS = [0, "last", "0..last", [0, "last"], "1..last", "max(0, last-1)"]
ANSWERS = ["A(n)", "sign", "A(n+1)..A(digits)", "A(0)"]
CLASSES = [f"S{k}" for k in range(6)]


@st.composite
def nodes(draw, index: int):
    site = draw(st.sampled_from(["head", "mlp", "neurons", "any"]))
    node: dict = {
        "id": f"N{index}x{{n}}",
        "for_each": {"n": draw(st.sampled_from(RANGES))},
        "computes": draw(st.lists(st.sampled_from(VARS), min_size=1, max_size=3, unique=True)),
        "site": site,
    }
    if draw(st.booleans()):
        node["computes"] = " | ".join(node["computes"])
    if draw(st.booleans()):
        node["description"] = draw(st.text(max_size=30))
    if site in ("head", "any"):
        node["max_heads"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            node["attends"] = [
                {"to": draw(st.lists(st.sampled_from(POSITIONS), min_size=1, max_size=3)), "min_share": draw(st.floats(0, 1))}
                for _ in range(draw(st.integers(1, 2)))
            ]
    if draw(st.booleans()):
        node["at"] = draw(st.lists(st.sampled_from(POSITIONS), min_size=1, max_size=3))
    if draw(st.booleans()):
        node["layers"] = draw(st.sampled_from(LAYERS))
    if draw(st.booleans()):
        key = draw(st.sampled_from(["exactly", "at_least"]))
        node["impacts"] = {key: draw(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=2))}
    classes = draw(st.lists(st.sampled_from(CLASSES), max_size=4, unique=True))
    cut = draw(st.integers(0, len(classes)))
    if classes[:cut]:
        node["breaks"] = classes[:cut]
    if classes[cut:]:
        node["spares"] = classes[cut:]
    if draw(st.booleans()):
        node["required"] = draw(st.booleans())
    if draw(st.booleans()):
        node["test"] = {
            "min_accuracy": draw(st.floats(0, 1)),
            "pairs": draw(st.integers(1, 5000)),
            "keep": draw(st.lists(st.sampled_from(["SC(n-1)", "SA(n)", "ST(n+1)"]), max_size=2, unique=True)),
        }
    return node


@st.composite
def hypotheses(draw):
    n_nodes = draw(st.integers(1, 5))
    node_list = [draw(nodes(i)) for i in range(n_nodes)]
    edges = []
    for _ in range(draw(st.integers(0, 4))):
        a, b = draw(st.integers(0, n_nodes - 1)), draw(st.integers(0, n_nodes - 1))
        shift = draw(st.sampled_from(["n", "n-1", "n+1"]))
        edge = {"flow": f"N{a}x{{n}} -> N{b}x{{{shift}}}", "for_each": {"n": draw(st.sampled_from(RANGES))}}
        if draw(st.booleans()):
            edge["optional"] = True
        if draw(st.booleans()):
            edge["test"] = {"min_accuracy": draw(st.sampled_from([0.5, 0.9])), "pairs": draw(st.sampled_from([64, 256]))}
        edges.append(edge)
    applies = {}
    if draw(st.booleans()):
        applies["digits"] = draw(st.sampled_from(["2..", "3..10", 6, {"min": 1}]))
    if draw(st.booleans()):
        applies["layers"] = draw(st.sampled_from(["1..", "..4", 2]))
    checks = {}
    if draw(st.booleans()):
        checks["min_faithfulness"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        checks["minimality"] = draw(st.booleans())
    return Hypothesis.build(
        draw(st.from_regex(r"[a-z][a-z0-9_\-]{0,12}", fullmatch=True)),
        task="add",
        description=draw(st.text(max_size=40)),
        applies_to=applies or None,
        checks=checks or None,
        nodes=node_list,
        edges=edges,
    )


@settings(max_examples=150, **SETTINGS)
@given(hypotheses())
def test_yaml_round_trip(h):
    text = h.to_yaml()
    again = loads(text, file="roundtrip.yaml")
    assert again == h
    assert again.to_yaml() == text


def test_shipped_specs_round_trip():
    for path in sorted(SPECS.glob("*.yaml")):
        h = loads(path.read_text(), file=str(path))
        assert loads(h.to_yaml()) == h, path.name


# ----------------------------------------------------------------------------- malformed specs

SOURCES = {p.stem: p.read_text() for p in sorted(SPECS.glob("*.yaml"))}
SHAPE_FOR = {
    "addition": make_shape("add", 6, 2, 3),
    "addition_2layer": make_shape("add", 6, 2, 3),
    "addition_2layer_v2": make_shape("add", 6, 3, 4),
    "addition_2layer_v3": make_shape("add", 4, 2, 3),
    "addition_2layer_v4": make_shape("add", 5, 2, 3),
    "addition_1layer": make_shape("add", 5, 1, 3),
    "addition_1layer_lookahead": make_shape("add", 5, 1, 3),
    "subtraction": make_shape("sub", 6, 2, 3),
    "subtraction_2layer_v2": make_shape("sub", 5, 2, 3),
    "subtraction_2layer_v3": make_shape("sub", 4, 2, 3),
    "subtraction_2layer": make_shape("sub", 6, 2, 3),
    "mixed": make_shape("mix", 6, 3, 4),
    "mixed_3layer": make_shape("mix", 6, 3, 4),
    "mixed_3layer_v2": make_shape("mix", 6, 3, 4),
    "negative_control": make_shape("add", 6, 2, 3),
}
WORDS = [
    "SA", "SB", "sa", "ST", "MV", "OPR", "SGN", "A", "D", "D'", "P", "sign", "sgn", "predicts", "=", "last", "digits",
    "spread", "true", "mlp_layers", "last-1",
    "layers", "heads", "n", "k", "m", "0", "1", "-1", "99", "1000000000000", "0..", "..", "->", "|", "{", "}", "(", ")",
    "[", "]", ":", "- ", "&a", "*a", "!!python/object:os.system", "!!binary", "<<: *a", "~", "null", "yes", "true",
    "1.5", "nan", ".inf", "2020-01-01", "'", '"', "#", "\t", "\\", "\x00", "\x85", "é", "∑", "head", "mlp", "neurons",
    "any", "exactly", "at_least", "for_each", "computes", "site", "at", "attends", "min_share", "override", "include",
    "addition.yaml", "mixed.yaml", "nodes", "edges", "optional", "S9", "M1", "N1", "((((((((((", "))))", "n//0", "n%0",
    "9*9*9*9*9*9*9*9*9*9*9*9", "-(-(-(-n)))", "min()", "max(n,", "0..digits*1000000",
]  # fmt: skip


@st.composite
def mutants(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["word", "insert", "delete", "line_del", "line_dup", "line_swap", "indent", "truncate"]))
        lines = text.split("\n")
        if kind == "word":
            spans = [m.span() for m in re.finditer(r"[A-Za-z_']+|\d+|\.\.|[{}\[\](),:|=-]", text)]
            if not spans:
                continue
            a, b = spans[draw(st.integers(0, len(spans) - 1))]
            text = text[:a] + draw(st.sampled_from(WORDS)) + text[b:]
        elif kind == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=6))) + text[at:]
        elif kind == "delete":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + text[at + draw(st.integers(1, 30)) :]
        elif kind == "line_del":
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        elif kind == "line_dup":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif kind == "line_swap":
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip()
            text = "\n".join(lines)
        else:
            text = text[: draw(st.integers(0, len(text)))]
    return name, text


def check_only_spec_errors(text: str, shape) -> None:
    try:
        h = loads(text, file="mutant.yaml", base_dir=SPECS)
        expand(h, shape)
        # valid after all: it must also round-trip
        assert loads(h.to_yaml(), base_dir=SPECS) == h
    except SpecError as err:
        assert err.file is not None, err.render()
        assert isinstance(err.line, int) and err.line >= 1, err.render()
        assert isinstance(err.column, int) and err.column >= 1, err.render()
        if err.message.startswith("unknown ") and "did you mean" not in (err.hint or ""):
            assert "allowed" in (err.hint or ""), err.render()


@settings(max_examples=1500, **SETTINGS)
@given(mutants())
def test_mutated_specs_raise_only_spec_errors(mutant):
    name, text = mutant
    check_only_spec_errors(text, SHAPE_FOR[name])


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12)
    | st.sampled_from(WORDS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.sampled_from(WORDS), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def data_mutants(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    data = yaml.load(SOURCES[name].replace(": =", ": '='"), Loader=_LOADER)
    for _ in range(draw(st.integers(1, 2))):
        mutate_subtree(draw, data, JSONISH)
    return name, yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


@settings(max_examples=800, **SETTINGS)
@given(data_mutants())
def test_structurally_mutated_specs_raise_only_spec_errors(mutant):
    name, text = mutant
    check_only_spec_errors(text, SHAPE_FOR[name])


@settings(max_examples=300, **SETTINGS)
@given(st.text(max_size=200))
def test_random_text_raises_only_spec_errors(text):
    check_only_spec_errors(text, SHAPE_FOR["addition"])
