"""Regression tests for the spec cases of issue 14: each one through the real CLI, which must exit 2
with one located message and no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from circuitspec.cli import main
from circuitspec.errors import CircuitSpecError
from circuitspec.spec import Hypothesis, expand, load, loads, make_shape
from circuitspec.spec.loader import MAX_INCLUDE_DEPTH
from reliability_helpers import assert_user_error, run_cli

HEAD = "name: t\ntask: add\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("name: !!timestamp x\ntask: add\n", 1, "cannot read value 'x' as timestamp"),
        ("name: t\ntask: !!bool add\n", 2, "cannot read value 'add' as bool"),
        (HEAD + "nodes:\n  - id: !!float SA\n    computes: SA(0)\n", 4, "as float"),
    ],
)
def test_type_tag_on_a_value_it_cannot_convert(tmp_path, text, line, says):  # case 1
    path = write(tmp_path, "tag.yaml", text)
    assert_user_error(run_cli("spec", "check", path), path, line, says=says)


def test_include_name_with_a_nul_byte(tmp_path):  # case 2
    path = write(tmp_path, "nul.yaml", HEAD + 'include: ["a\\0b.yaml"]\n')
    assert_user_error(run_cli("spec", "check", path), path, 3, says="NUL character")


def test_include_name_longer_than_the_filesystem_allows(tmp_path):  # case 2
    path = write(tmp_path, "long.yaml", HEAD + f"include: [{'x' * 300}.yaml]\n")
    assert_user_error(run_cli("spec", "check", path), path, 3, says="File name too long")


def test_include_chain_1000_files_deep(tmp_path):  # case 3
    for i in range(1000):
        write(tmp_path, f"d{i}.yaml", f"name: d{i}\ntask: add\n" + (f"include: [d{i + 1}.yaml]\n" if i < 999 else ""))
    deepest = tmp_path / f"d{MAX_INCLUDE_DEPTH - 1}.yaml"
    assert_user_error(run_cli("spec", "check", tmp_path / "d0.yaml"), deepest, 3, says=f"more than {MAX_INCLUDE_DEPTH} files deep")
    # a chain within the limit loads, and its nodes arrive at the top
    write(tmp_path, f"d{MAX_INCLUDE_DEPTH - 2}.yaml", f"name: last\ntask: add\nnodes:\n  - {{id: X, computes: SA(0)}}\n")
    assert [n.id for n in load(tmp_path / "d0.yaml").nodes] == ["X"]


def test_device_as_spec_is_refused_without_reading_it():  # case 4: /dev/zero would be read whole
    proc = run_cli("spec", "check", "/dev/zero", memory_bytes=2 << 30)
    assert_user_error(proc, "/dev/zero", says="not a regular file")


def test_fifo_as_spec_or_include_does_not_block(tmp_path):  # case 4: opening a FIFO blocks until a writer comes
    os.mkfifo(tmp_path / "pipe.yaml")
    assert_user_error(run_cli("spec", "check", tmp_path / "pipe.yaml", timeout=60), tmp_path / "pipe.yaml", says="not a regular file")
    path = write(tmp_path, "top.yaml", HEAD + "include: [pipe.yaml]\n")
    assert_user_error(run_cli("spec", "check", path, timeout=60), path, 3, says="not a regular file")


def test_overall_instance_cap(tmp_path):  # case 5: 10 templates x 20,000 instances took 102 s and 1.5 GB
    nodes = "".join(f"  - {{id: 'X{i}x{{k}}', for_each: {{k: 0..19999}}, computes: SA(0)}}\n" for i in range(10))
    path = write(tmp_path, "big.yaml", HEAD + "nodes:\n" + nodes)
    assert_user_error(run_cli("spec", "check", path), path, 5, says="range 0..19999 is too long")
    # the cap counts nodes and edges of every template together
    nodes = "".join(f"  - {{id: 'X{i}x{{k}}', for_each: {{k: 0..5999}}, computes: SA(0)}}\n" for i in range(3))
    edges = "edges:\n  - {flow: 'X0x{k} -> X1x{k}', for_each: {k: 0..5999}}\n"
    with pytest.raises(CircuitSpecError, match="at most 20000 nodes and edges in all") as err:
        expand(loads(HEAD + "nodes:\n" + nodes + edges, file="three.yaml"), make_shape("add", 6, 2, 3))
    assert (err.value.file, err.value.line) == ("three.yaml", 8)
    small = edges.replace("5999", "1999")
    assert expand(loads(HEAD + "nodes:\n" + nodes + small), make_shape("add", 6, 2, 3)).number_of_edges() == 2000


def test_applies_to_beyond_every_model_is_located(tmp_path):  # case 6
    path = write(tmp_path, "app.yaml", HEAD + "applies_to:\n  digits: 999999..\n")
    assert_user_error(run_cli("spec", "check", path), path, 4, says="excludes every model")
    path = write(tmp_path, "layers.yaml", HEAD + "applies_to: {layers: 1000..}\n")
    assert_user_error(run_cli("spec", "check", path), path, 3, says="at most 256 layers")


@pytest.mark.parametrize("command", [["spec", "schema", "-o"], ["spec", "render", "SPEC", "--format", "dot", "-o"]])
def test_schema_and_render_write_atomically(tmp_path, monkeypatch, capsys, command):  # case 12
    spec = write(tmp_path, "s.yaml", HEAD + "nodes:\n  - {id: X, computes: SA(0)}\n")
    out = write(tmp_path, "out.txt", "the previous file\n")
    argv = [str(spec) if a == "SPEC" else a for a in command] + [str(out)]

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", disk_full)
        assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "the previous file\n"  # not truncated, not half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "s.yaml"]  # no temporary file left
    assert main(argv) == 0
    assert out.read_text() != "the previous file\n"


def test_to_yaml_round_trips_the_largest_bounds_and_refuses_larger():  # case 13
    h = Hypothesis.build("big", task="add", applies_to={"layers": {"min": 1, "max": 999_999}, "heads": "..999999"})
    assert loads(h.to_yaml()) == h
    with pytest.raises(CircuitSpecError, match="less than or equal to 999999") as err:
        loads(HEAD + "applies_to:\n  heads: {min: 1, max: 1000000}\n", file="b.yaml")
    assert (err.value.file, err.value.line) == ("b.yaml", 4)


def test_includes_stay_inside_the_spec_folder(tmp_path):  # case 14
    secret = write(tmp_path, "outside/secret.txt", "root:x:0:0:the first line of another file\n")
    top = write(tmp_path, "specs/top.yaml", HEAD + f"include: [{secret}]\n")
    text = assert_user_error(run_cli("spec", "check", top), top, 3, says="is outside")
    assert "root:x" not in text
    up = write(tmp_path, "specs/up.yaml", HEAD + "include: [../outside/secret.txt]\n")
    assert_user_error(run_cli("spec", "check", up), up, 3, says="is outside")
    # allowed by the user: read, but its content is still not echoed
    text = assert_user_error(run_cli("spec", "check", "--include-root", tmp_path, up), secret, 1, says="not a spec")
    assert "root:x" not in text


def test_includes_inside_the_tree_and_under_an_include_root(tmp_path):  # case 14: what stays allowed
    write(tmp_path, "specs/parts/base.yaml", "name: base\ntask: add\nnodes:\n  - {id: B, computes: SA(0)}\n")
    write(tmp_path, "shared/extra.yaml", "name: extra\ntask: add\nnodes:\n  - {id: E, computes: SA(1)}\n")
    top = write(tmp_path, "specs/top.yaml", HEAD + "include: [parts/base.yaml]\n")
    assert [n.id for n in load(top).nodes] == ["B"]
    both = write(tmp_path, "specs/both.yaml", HEAD + "include: [parts/base.yaml, ../shared/extra.yaml]\n")
    assert [n.id for n in load(both, include_root=tmp_path).nodes] == ["B", "E"]
    with pytest.raises(CircuitSpecError, match="is outside"):
        load(both)
