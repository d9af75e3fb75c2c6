"""A spec fuzzer: hypothesis strategies that mutate the shipped specs, and a bounded run of one mutant.

The promise under test: a spec file either loads (and then expands, and round-trips through
``to_yaml``), or raises a ``CircuitSpecError`` that names the file and the line; never any other
exception, never longer than a time bound, never more memory than a bound, and never the content
of a file outside the spec's folder in a message. Mutations are textual (words, characters,
lines, indentation, truncation), YAML-level (type tags, anchors and alias bombs, deep nesting,
merge keys), structural (a random subtree of the parsed spec replaced or deleted) and includes
(cycles, deep chains, devices, FIFOs, binary files, absolute and escaping paths, NUL bytes,
names too long). ``tests/test_fuzz_specs.py`` runs a short derandomized sample in the suite;
``benchmarks/fuzz_specs.py`` runs thousands and counts the outcomes.
"""

from __future__ import annotations

import os
import re
import signal
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import strategies as st

from circuitspec.errors import CircuitSpecError
from circuitspec.spec import default_shape, expand, loads

SPECS = Path(__file__).resolve().parent.parent / "specs"
SOURCES = {p.name: p.read_text() for p in sorted(SPECS.glob("*.yaml"))}
SECRET = "SECRET-LINE-OF-ANOTHER-FILE"  # in files a message must never echo
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_BYTES = 256 << 20
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

WORDS = [
    "SA", "SB", "ST", "MV", "OPR", "A", "D", "D'", "P", "sign", "predicts", "=", "last", "digits", "n", "k", "0", "-1",
    "99", "1000000000000", "0..", "..", "->", "|", "{", "}", "(", ")", "[", "]", ":", "- ", "~", "null", "yes", "1.5",
    "nan", ".inf", "2020-01-01", "'", '"', "#", "\t", "\\", "\x00", "\x85", "\ufeff", "é", "head", "mlp", "any",
    "exactly", "for_each", "computes", "site", "at", "attends", "override", "include", "nodes", "edges", "optional",
    "S9", "M1", "((((((((((", "n//0", "9*9*9*9*9*9*9*9*9*9*9*9", "0..digits*1000000", "0..19999", "999999..",
]  # fmt: skip
TAGS = [
    "!!timestamp", "!!bool", "!!int", "!!float", "!!binary", "!!str", "!!null", "!!set", "!!omap", "!!pairs", "!!seq",
    "!!map", "!!merge", "!!value", "!!python/object/apply:os.system", "!!python/name:os.system", "!custom", "!<tag:x>",
]  # fmt: skip
YAML_SNIPPETS = [
    "a: &a [1, 2]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "x: &x\n  - *x\n", "<<: [{a: 1}, {b: 2}]\n", "<<: 5\n", "? [a, b]\n: 1\n", "%YAML 1.1\n---\n", "--- a\n--- b\n",
    "[" * 200 + "]" * 200, "{a: " * 60 + "1" + "}" * 60, "&a a: *a\n", "*unknown\n", "k: !!binary ZZZ\n",
]  # fmt: skip
INCLUDES = [
    "addition.yaml", "parts/base.yaml", "parts/../parts/base.yaml", "chain/c0.yaml", "cycle_a.yaml", "list.yaml",
    "scalar.txt", "binary.bin", "empty.yaml", "folder", "pipe.yaml", "big.yaml", "loop.yaml", "missing.yaml",
    "../outside/secret.txt", "/etc/passwd", "/dev/zero", "/dev/stdin", "a\x00b.yaml", "x" * 300 + ".yaml",
    "/".join(["d"] * 3000), "", " ", "é.yaml", "~/x.yaml", "C:\\x.yaml", ".",
]  # fmt: skip
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=12) | st.sampled_from(WORDS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.sampled_from(WORDS), inner, max_size=4),
    max_leaves=12,
)


def make_fixture(root: Path) -> Path:
    """The folder mutants are loaded from (``root/specs``), holding every kind of include target;
    ``root/outside`` holds a file the specs must not reach."""
    base = root / "specs"
    (base / "parts").mkdir(parents=True)
    (base / "chain").mkdir()
    (base / "folder").mkdir()
    (root / "outside").mkdir()
    for name, text in SOURCES.items():
        (base / name).write_text(text)
    (base / "parts/base.yaml").write_text("name: base\ntask: add\nnodes:\n  - {id: 'B{n}', for_each: {n: 0..digits-1}, computes: SA(n)}\n")
    for i in range(40):  # deeper than MAX_INCLUDE_DEPTH
        (base / f"chain/c{i}.yaml").write_text(f"name: c{i}\ntask: add\n" + (f"include: [c{i + 1}.yaml]\n" if i < 39 else ""))
    (base / "cycle_a.yaml").write_text("name: a\ntask: add\ninclude: [cycle_b.yaml]\n")
    (base / "cycle_b.yaml").write_text("name: b\ntask: add\ninclude: [cycle_a.yaml]\n")
    (base / "list.yaml").write_text(f"- {SECRET}\n- b\n")
    (base / "scalar.txt").write_text(f"{SECRET}:x:0:0:root:/root:/bin/bash\n")
    (base / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (base / "empty.yaml").write_text("")
    (base / "big.yaml").write_text("#" * 2_100_000)
    (root / "outside/secret.txt").write_text(f"name: {SECRET}\ntask: add\n")
    os.mkfifo(base / "pipe.yaml")
    os.symlink("loop.yaml", base / "loop.yaml")
    return base


# ----------------------------------------------------------------------------- mutations


def _word(draw, text: str) -> str:
    spans = [m.span() for m in re.finditer(r"[A-Za-z_']+|\d+|\.\.|[{}\[\](),:|=-]", text)]
    if not spans:
        return text
    a, b = spans[draw(st.integers(0, len(spans) - 1))]
    return text[:a] + draw(st.sampled_from(WORDS)) + text[b:]


def _tag(draw, text: str) -> str:
    """A YAML tag in front of a random value (after a ``key: `` or a ``- ``)."""
    spots = [m.end() for m in re.finditer(r"(?<=: )|(?<=- )", text)]
    if not spots:
        return draw(st.sampled_from(TAGS)) + " " + text
    at = spots[draw(st.integers(0, len(spots) - 1))]
    return text[:at] + draw(st.sampled_from(TAGS)) + " " + text[at:]


def _lines(draw, text: str, kind: str) -> str:
    lines = text.split("\n")
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    if kind == "line_del":
        del lines[i]
    elif kind == "line_dup":
        lines.insert(i, lines[i])
    elif kind == "line_swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = " " * draw(st.integers(0, 8)) + lines[i].lstrip()
    return "\n".join(lines)


def _include(draw, text: str) -> str:
    """Replace the file's include list with draws from INCLUDES (or random text)."""
    names = draw(st.lists(st.sampled_from(INCLUDES) | st.text(max_size=20), min_size=1, max_size=3))
    body = "\n".join(line for line in text.split("\n") if not line.startswith("include:"))
    return f"include: {yaml.dump(names, Dumper=_DUMPER, default_flow_style=True, width=10**6).strip()}\n" + body


def _paths(data, prefix=(), seen=None):
    """Every path into parsed YAML, each container once (a recursive alias holds itself)."""
    seen = set() if seen is None else seen
    yield prefix
    if isinstance(data, (dict, list)) and id(data) not in seen and len(prefix) < 30:
        seen.add(id(data))
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for k, v in items:
            yield from _paths(v, prefix + (k,), seen)


def mutate_subtree(draw, data, leaves) -> bool:
    """Delete a random dict entry or replace a random subtree of ``data`` with a draw of ``leaves``, in place.

    False when ``data`` has no subtree (a scalar document). The property tests mutate the same way.
    """
    paths = [p for p in _paths(data) if p]
    if not paths:
        return False
    path = paths[draw(st.integers(0, len(paths) - 1))]
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(leaves)
    return True


def _structure(draw, text: str) -> str:
    """Parse, replace or delete a random subtree, dump again (only when the text still parses)."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except Exception:  # PyYAML's own constructors raise anything on a bad tag: no structure to mutate
        return text
    if not mutate_subtree(draw, data, JSONISH):
        return text
    try:
        return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    except Exception:  # e.g. a recursive alias: not dumpable
        return text


KINDS = ["word", "insert", "delete", "line_del", "line_dup", "line_swap", "indent", "truncate", "tag", "yaml", "include", "structure"]


@st.composite
def mutants(draw) -> tuple[str, str]:
    """(name of the shipped spec it started from, mutated text)."""
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(KINDS))
        if kind == "word":
            text = _word(draw, text)
        elif kind == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(WORDS) | st.text(max_size=6)) + text[at:]
        elif kind == "delete":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind.startswith("line") or kind == "indent":
            text = _lines(draw, text, kind)
        elif kind == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
        elif kind == "tag":
            text = _tag(draw, text)
        elif kind == "yaml":
            text = draw(st.sampled_from(YAML_SNIPPETS)) + (text if draw(st.booleans()) else "")
        elif kind == "include":
            text = _include(draw, text)
        else:
            text = _structure(draw, text)
    return name, text


# ----------------------------------------------------------------------------- one bounded run


@dataclass
class Outcome:
    kind: str  # loaded | error | unlocated | leak | crash | slow | memory
    detail: str
    seconds: float
    peak_bytes: int

    @property
    def ok(self) -> bool:
        return self.kind in ("loaded", "error")


class _TimeUp(BaseException):  # not an Exception, so no handler in the code under test swallows it
    pass


def _alarm(signum, frame):
    raise _TimeUp


def _load_expand_roundtrip(text: str, base: Path) -> None:
    h = loads(text, file=str(base / "fuzz.yaml"), base_dir=base)
    expand(h, default_shape(h))
    if loads(h.to_yaml(), file=str(base / "again.yaml"), base_dir=base) != h:
        raise AssertionError("to_yaml() does not load back to the same hypothesis")


def run_one(text: str, base: Path, *, time_limit: float = TIME_LIMIT_S, memory_limit: int = MEMORY_LIMIT_BYTES) -> Outcome:
    """Load, expand and round-trip one mutant under a time limit (SIGALRM) and a memory watch (tracemalloc)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    start = time.perf_counter()
    kind, detail = "loaded", ""
    try:
        signal.setitimer(signal.ITIMER_REAL, time_limit)
        try:
            _load_expand_roundtrip(text, base)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeUp:
        kind, detail = "slow", f"stopped after {time_limit:g} s"
    except MemoryError:
        kind, detail = "memory", "MemoryError"
    except CircuitSpecError as err:
        located = err.file is not None and isinstance(err.line, int) and err.line >= 1
        kind, detail = ("error" if located else "unlocated"), err.render()
        if SECRET in detail:
            kind = "leak"
    except Exception as err:  # anything else breaks the promise
        kind, detail = "crash", f"{type(err).__name__}: {err}"
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous)
    if kind in ("loaded", "error") and peak > memory_limit:
        kind, detail = "memory", f"peak {peak / 2**20:.0f} MiB"
    return Outcome(kind, detail, seconds, peak)
