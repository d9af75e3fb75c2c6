"""`circuitspec zoo ...` and the shipped zoo: exit codes, reproduction of card figures, acceptance."""

from __future__ import annotations

import json
import shutil

from circuitspec.cli import main
from circuitspec.cli.zoo import consistent
from circuitspec.models import list_zoo, measure


def test_zoo_list(capsys, zoo_cards):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for card in zoo_cards:
        assert card.name in out


def test_zoo_list_markdown_is_the_readme_table(capsys, zoo_cards):
    """The README's zoo table is this command's output; keep them in step."""
    from pathlib import Path

    assert main(["zoo", "list", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    rows = table.splitlines()
    assert len(rows) == 2 + len(zoo_cards)
    for card in zoo_cards:
        assert any(card.name in r and card.recipe.command in r for r in rows)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert table in readme, "README zoo table is stale: paste `circuitspec zoo list --markdown`"


def test_shipped_cards_are_complete(zoo_cards):
    names = {c.short_name for c in zoo_cards}
    assert {"add_d6_l2_h3_s372001", "add_d5_l1_h3_s372001"} <= names
    for card in zoo_cards:
        assert card.recipe is not None and card.recipe.command.startswith(f"circuitspec zoo train {card.name} ")
        assert card.results is not None and card.results.questions >= 100_000
        assert card.results.per_class and set(card.results.per_op) == ({"add", "sub"} if card.task.op == "mix" else set())
        assert len(card.weights_sha256) == 64
        assert card.architecture.d_model == 128


def test_shipped_addition_models_meet_acceptance(zoo_cards):
    """2+ layer addition: <= 10 failures per million on 1M questions and >= 99.9% on every class;
    1 layer: fails S3+."""
    for card in zoo_cards:
        r = card.results
        if card.task.op != "add":
            continue
        if card.architecture.n_layers >= 2:
            assert r.questions == 1_000_000, (card.name, r.uniform)
            assert r.failures_per_million <= 10, (card.name, r.uniform)
            assert all(c.accuracy >= 0.999 for c in r.per_class.values()), (card.name, r.per_class)
        else:
            assert all(r.per_class[c].accuracy >= 0.99 for c in ("S0", "S1")), (card.name, r.per_class)
            assert r.per_class["S2"].accuracy >= 0.95, (card.name, r.per_class)
            assert r.per_class["S4"].accuracy < 0.9, (card.name, r.per_class)
    # The "accurate on S0-S2": the longer-trained 1-layer model; the 6K-step one fails
    # as often as the paper's (12,590 vs 12,621 per million) and is 96% on S2.
    one_layer = [c for c in zoo_cards if c.task.op == "add" and c.architecture.n_layers == 1]
    assert any(all(c.results.per_class[k].accuracy >= 0.99 for k in ("S0", "S1", "S2")) for c in one_layer)


def test_zoo_eval_reproduces_the_card(add6_model):
    """20,000 fresh questions agree with the 1M-question figure on the card (intervals overlap)."""
    card = add6_model.card
    fresh = measure(add6_model, questions=20_000, per_class=500, seed=card.results.uniform.seed + 1)
    assert consistent(card.results, fresh), (card.results.uniform, fresh.uniform)
    for cls, c in fresh.per_class.items():
        assert c.accuracy >= card.results.per_class[cls].accuracy - 0.02, cls


def test_zoo_eval_cli_exit_codes(capsys):
    assert main(["zoo", "eval", "add_d5_l1_h3_t6K_s372001", "--questions", "5000", "--per-class", "200"]) == 0
    out = capsys.readouterr().out
    assert "consistent" in out and "class S0" in out
    assert main(["zoo", "eval", "add_d6_l2_h3_s999"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_zoo_eval_figures_do_not_depend_on_jobs(capsys):
    """Worker processes (--jobs 2, one torch thread each) answer the same questions as this process does."""
    args = ["zoo", "eval", "add_d5_l1_h3_t6K_s372001", "--questions", "20000", "--per-class", "100", "--family-size", "500"]
    printed = []
    for jobs in ("1", "2"):
        assert main([*args, "--jobs", jobs]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    assert "family cascade" in printed[0] and "20,000 uniform questions" in printed[0]


def test_cli_errors_exit_2_and_overwrite_nothing(tmp_path, capsys, zoo_cards):
    card = next(c for c in zoo_cards if c.name == "add_d5_l1_h3_t6K_s372001")
    from circuitspec.models import zoo_dir

    for suffix in (".json", ".safetensors"):
        shutil.copy(zoo_dir() / f"{card.name}{suffix}", tmp_path / f"{card.name}{suffix}")
    weights = tmp_path / f"{card.name}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x55
    weights.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["zoo", "eval", card.name, "--folder", str(tmp_path), "--questions", "100"]) == 2
    assert "sha256" in capsys.readouterr().err
    # training into a folder that already has the model refuses before training
    assert main(["zoo", "train", card.name, "--out", str(tmp_path), "--steps", str(card.recipe.steps)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["zoo", "train", "add_d5_l2_s1", "--out", str(tmp_path)]) == 2
    assert main(["zoo", "list", "--folder", str(tmp_path / "missing")]) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    card_path = tmp_path / f"{card.name}.json"
    card_path.write_text(json.dumps({"name": card.name}))
    assert main(["zoo", "eval", str(card_path)]) == 2
    assert "does not validate" in capsys.readouterr().err


def test_cli_train_writes_a_model(tmp_path, capsys):
    out = tmp_path / "models"
    code = main(["zoo", "train", "add_d2_l1_h1_s3", "--steps", "30", "--width", "16", "--out", str(out),
                 "--questions", "2000", "--per-class", "50", "--checkpoint-every", "10"])
    assert code == 0
    (card,) = list_zoo(out)
    assert card.name == "add_d2_l1_h1_t0.03K_s3" and card.results.questions == 2000
    assert card.recipe.command == "circuitspec zoo train add_d2_l1_h1_t0.03K_s3 --steps 30 --width 16 --lr 0.001 --device cpu --threads 1"
    assert not (out / ".checkpoints" / f"{card.name}.ckpt").exists()
    assert main(["zoo", "list", "--folder", str(out)]) == 0
    assert card.name in capsys.readouterr().out
