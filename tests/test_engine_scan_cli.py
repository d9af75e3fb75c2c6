"""`circuitspec scan MODEL`: the useful sites table, the JSON file, the cache, user errors."""

from __future__ import annotations

import json

import torch

from circuitspec.cli import main
from engine_helpers import ZOO_NAMES, zoo_name

ZOO_NAME = zoo_name() or ZOO_NAMES[0]


def test_scan_writes_facts_and_reuses_the_cache(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "facts.json"
    args = ["scan", ZOO_NAME, "--questions", "60", "--probe-questions", "200", "--out", str(out), "--seed", "1", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    text = capsys.readouterr().out
    facts = json.loads(out.read_text())
    assert facts["useful_sites"] and facts["questions"] >= 60
    assert facts["params"]["seed"] == 1
    shown = [s for s in facts["useful_sites"] if s in text]
    assert len(shown) == len(facts["useful_sites"])  # the table lists every useful site
    assert "measured" in text
    first = out.read_text()
    assert main(args) == 0
    assert "from the cache" in capsys.readouterr().out
    assert out.read_text() == first


def test_scan_errors_exit_2(tmp_path, capsys):
    assert main(["scan", "no_such_model_d6", "--out", str(tmp_path / "x.json")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["scan", ZOO_NAME, "--ablation", "median", "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown ablation" in capsys.readouterr().err
