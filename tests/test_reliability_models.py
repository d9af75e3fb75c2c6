"""Regression tests for the model cases of issue 14 (broken checkpoints, cards and weights; model
names), each through the real CLI: exit 2, one located message, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from circuitspec.errors import ModelError
from circuitspec.models import load
from circuitspec.models.store import sha256_bytes, weights_bytes
from circuitspec.models.zoo import resolve, zoo_dir
from reliability_helpers import assert_user_error, run_cli

NAME = "add_d5_l1_h3_t6K_s372001"  # the smallest shipped model
SPECS = Path(__file__).resolve().parent.parent / "specs"


def copy_model(folder: Path) -> Path:
    """A copy of the shipped model in ``folder``; returns its card path."""
    for suffix in (".json", ".safetensors"):
        shutil.copy(zoo_dir() / f"{NAME}{suffix}", folder / f"{NAME}{suffix}")
    return folder / f"{NAME}.json"


def edit_card(card: Path, **architecture_or_task) -> None:
    data = json.loads(card.read_text())
    for key, value in architecture_or_task.items():
        section = "task" if key == "digits" else "architecture"
        data[section][key] = value
    card.write_text(json.dumps(data))


def poison_weights(card: Path, value: float) -> None:
    """Write one non-finite weight and re-hash the card, as a broken training run would leave it."""
    weights = card.with_suffix(".safetensors")
    tensors = load_file(weights)
    tensors["blocks.0.attn.q.weight"][0, 0] = value
    data = weights_bytes(tensors)
    weights.write_bytes(data)
    card_data = json.loads(card.read_text())
    card_data["weights_sha256"] = sha256_bytes(data)
    card.write_text(json.dumps(card_data))


def test_import_of_an_empty_pth(tmp_path):  # case 7
    (tmp_path / "empty.pth").write_bytes(b"")
    proc = run_cli("zoo", "import", tmp_path / "empty.pth", "--op", "add", "--out", tmp_path / "out")
    assert_user_error(proc, tmp_path / "empty.pth", says="checkpoint is empty")
    (tmp_path / "junk.pth").write_bytes(b"\x80")  # a truncated pickle: torch's error has no message worth a line
    proc = run_cli("zoo", "import", tmp_path / "junk.pth", "--op", "add", "--out", tmp_path / "out")
    assert_user_error(proc, tmp_path / "junk.pth", says="cannot read checkpoint")


def test_import_with_a_name_that_leaves_the_out_folder(tmp_path):  # case 7
    pth = tmp_path / "m.pth"
    assert run_cli("zoo", "export", NAME, pth).returncode == 0
    out = tmp_path / "a" / "b" / "out"
    proc = run_cli("zoo", "import", pth, "--op", "add", "--name", "../../x", "--out", out, "--questions", "0")
    assert_user_error(proc, pth, says="'../../x' is not a usable model name")
    assert not list(tmp_path.rglob("x.*"))


def test_eval_of_a_card_claiming_a_billion_layers(tmp_path):  # case 8: was a MemoryError after 56 s
    card = copy_model(tmp_path)
    edit_card(card, n_layers=10**9)
    assert_user_error(run_cli("zoo", "eval", card, "-n", "100"), card, says="n_layers: Input should be less than or equal to 256")


def test_eval_of_a_card_whose_digits_do_not_match_the_weights(tmp_path):  # case 8: was a ValueError from the forward pass
    card = copy_model(tmp_path)
    edit_card(card, digits=4)
    assert_user_error(run_cli("zoo", "eval", card, "-n", "100"), card, says="4-digit questions take 16 tokens, but the architecture's n_ctx is 19")


def test_a_prefix_of_a_zoo_name_is_an_error_not_a_silent_pick(tmp_path):  # case 9
    proc = run_cli("verify", SPECS / "addition_1layer.yaml", "-m", NAME[:-1], "--out", tmp_path / "out")
    text = assert_user_error(proc, zoo_dir(), says=f"unknown model '{NAME[:-1]}'")
    assert f"did you mean '{NAME}'" in text
    assert not (tmp_path / "out").exists()
    proc = run_cli("zoo", "eval", "add_d5_l1_h3_t6", "-n", "100")
    assert f"did you mean '{NAME}'" in assert_user_error(proc, zoo_dir(), says="unknown model")
    # what stays accepted: the full name, and the name without its _tNK part where that is unique
    assert resolve(NAME).name == f"{NAME}.json"
    assert resolve("add_d6_l2_h3_s372001").name == "add_d6_l2_h3_t8K_s372001.json"
    with pytest.raises(ModelError, match="ambiguous"):
        resolve("add_d5_l1_h3_s372001")  # 6K and 15K both strip to it


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf_are_a_model_error(tmp_path, value):  # case 10: verify said "fails 0/16"
    card = copy_model(tmp_path)
    poison_weights(card, value)
    weights = card.with_suffix(".safetensors")
    with pytest.raises(ModelError, match="NaN or infinite values \\(blocks.0.attn.q.weight\\)"):
        load(card)
    assert_user_error(run_cli("zoo", "eval", card, "-n", "100"), weights, says="the model cannot compute")
    proc = run_cli("verify", SPECS / "addition_1layer.yaml", "-m", card, "--out", tmp_path / "out", "-q")
    assert_user_error(proc, weights, says="NaN or infinite")


def test_import_of_a_checkpoint_with_nan_is_refused(tmp_path):  # case 10, through the .pth door
    pth = tmp_path / "m.pth"
    assert run_cli("zoo", "export", NAME, pth).returncode == 0
    tl = torch.load(pth, weights_only=True)
    tl["blocks.0.mlp.W_in"][0, 0] = float("nan")
    torch.save(tl, pth)
    proc = run_cli("zoo", "import", pth, "--op", "add", "--out", tmp_path / "out", "--questions", "0")
    assert_user_error(proc, pth, says="NaN or infinite values (blocks.0.mlp.in.weight)")
    assert not (tmp_path / "out").exists()
