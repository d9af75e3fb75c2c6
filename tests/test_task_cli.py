"""`circuitspec task sample`: output for good input, exit 2 and a clear message for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from task_reference import class_name, parse, question

from circuitspec.cli import main


def test_sample_table(capsys):
    assert main(["task", "sample", "--op", "add", "--digits", "6", "--class", "S4", "-n", "5", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "+" in line and "=" in line and "S4" in line]
    assert len(lines) == 5
    assert "SV" in out and "ST" in out


def test_sample_json_is_exact_and_seeded(capsys):
    args = ["task", "sample", "--op", "mix", "--digits", "4", "-n", "20", "--seed", "3", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    for row in first["questions"]:
        x, y, op = parse(row["question"], 4)
        assert row["question"] == question(x, y, op, 4)
        assert row["class"] == class_name(x, y, op, 4)
        assert len(row["variables"]["A"]) == 5


def test_sample_in_a_layout(capsys):
    assert main(["task", "sample", "--digits", "4", "--layout", "reversed_nosign_unpadded", "--enrich", "-n", "40", "--json"]) == 0
    import json

    from task_reference import written

    rows = json.loads(capsys.readouterr().out)["questions"]
    texts = [r["question"] for r in rows]
    assert texts == [written(int(t[:4].lstrip("_")), int(t[5:9].lstrip("_")), "+", 4, "reversed_nosign_unpadded") for t in texts]
    assert any(t.startswith("__") for t in texts)  # enrichment shortens some operands


@pytest.mark.parametrize(
    "args, words",
    [
        (["--op", "mul"], ["'mul'", "add, mix, sub"]),
        (["--digits", "0"], ["0", "1 to 20"]),
        (["--digits", "21"], ["21", "1 to 20"]),
        (["--digits", "3", "--class", "S5"], ["S5", "S0, S1, S2, S3"]),
        (["--class", "Q1"], ["'Q1'", "S0"]),
        (["-n", "0"], ["-n", "0"]),
        (["--layout", "mirror"], ["unknown layout 'mirror'", "reversed"]),
        (["--op", "sub", "--layout", "nosign"], ["no sign token", "reversed_unpadded"]),
    ],
)
def test_bad_input_exits_2_without_traceback(capsys, args, words):
    assert main(["task", "sample", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(w in err for w in words), err


def test_console_script_entry_point():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from circuitspec.cli import main; sys.exit(main())", "task", "sample", "--op", "sub", "--digits", "21"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "21" in done.stderr and "Traceback" not in done.stderr
