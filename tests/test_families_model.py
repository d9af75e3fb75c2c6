"""Families, the failure search and the verdict's accuracy note, on real zoo models."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from circuitspec.cli import main
from circuitspec.models.evaluate import predictions
from circuitspec.models.families import family_failures
from circuitspec.models.search import search, shrink, structured_questions
from circuitspec.strategies import Question, model_answers
from circuitspec.verify.accuracy import explained_accuracy


def _wrong(model, tokens):
    return (predictions(model, tokens) != tokens[:, -model.task.n_answer :]).any(-1)


@pytest.fixture(scope="module")
def one_layer_families(add5_1layer_model):
    return family_failures(add5_1layer_model, size=200)


def test_the_one_layer_model_fails_cascades_and_the_examples_are_its_answers(add5_1layer_model, one_layer_families):
    results = one_layer_families
    cascade = results["cascade"]
    assert cascade.failures > 0.1 * cascade.questions  # the paper: no cascade beyond one column in 1 layer
    assert set(cascade.failed_classes) <= {f"S{k}" for k in range(6)}
    assert sum(cascade.failed_classes.values()) == cascade.failures
    assert results["single"].failures == 0 and results["single"].exhaustive
    for example in cascade.examples:
        text, answer = example.split(" (model: ")
        question = Question.parse(text)
        assert model_answers(add5_1layer_model, question.tokens()[None])[0] == answer.rstrip(")") != question.answer


def test_search_shrinks_failures_to_simpler_failing_questions(add5_1layer_model):
    found = search(add5_1layer_model, 600, seed=5, shrink_at_most=8)
    assert found.failures > 8 and found.shrunk and sum(found.shrunk_from) == 8
    assert found.failures == search(add5_1layer_model, 600, seed=5, shrink_at_most=0).failures  # seeded
    for text in found.shrunk:
        question = Question.parse(text.split(" (model: ")[0])
        assert bool(_wrong(add5_1layer_model, question.tokens()[None])[0])
    # shrinking never makes a question harder to read: fewer or as many non-zero digits
    tokens = structured_questions(add5_1layer_model.task, 600, torch.Generator().manual_seed(5))
    first = tokens[_wrong(add5_1layer_model, tokens)][0]
    small = shrink(add5_1layer_model, first)
    digits = slice(0, 2 * 5 + 1)
    assert int((small[digits] != 0).sum()) <= int((first[digits] != 0).sum())
    assert bool(_wrong(add5_1layer_model, small[None])[0])


def test_zoo_eval_writes_families_and_search_into_the_card(tmp_path, capsys, add5_1layer_model):
    for suffix in (".json", ".safetensors"):
        shutil.copy(add5_1layer_model.path.with_suffix(suffix), tmp_path)
    name = add5_1layer_model.name
    before = json.loads((tmp_path / f"{name}.json").read_text())["results"]
    code = main(["zoo", "eval", name, "--folder", str(tmp_path), "-n", "0", "--per-class", "0",
                 "--family-size", "100", "--search", "300", "--update", "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "family cascade" in out and "shrunk" in out
    after = json.loads((tmp_path / f"{name}.json").read_text())["results"]
    assert after["uniform"] == before["uniform"] and after["per_class"] == before["per_class"]
    assert after["families"]["cascade"]["size"] == 100 and after["families"]["cascade"]["failures"] > 0
    assert after["search"]["questions"] == 300


def test_verdict_accuracy_counts_only_the_explained_classes(add5_1layer_model, one_layer_families):
    card = add5_1layer_model.card
    fam = one_layer_families
    card = card.model_copy(update={"results": card.results.model_copy(update={"families": fam})})
    low = explained_accuracy(card, ["S0", "S1"], "h")
    assert low.classes == ["S0", "S1"] and low.questions == sum(card.results.per_class[c].questions for c in ("S0", "S1"))
    for name, count in low.families_failed.items():
        assert count == sum(fam[name].failed_classes.get(c, 0) for c in ("S0", "S1"))
    every = explained_accuracy(card, [], "h")
    assert every.classes == list(card.results.per_class) and every.accuracy.value < low.accuracy.value
    assert "cascade" in every.warning and every.families_failed["cascade"] == fam["cascade"].failures


def test_every_shipped_multi_layer_addition_model_passes_every_family_and_the_search():
    """Issue 16's bar, read from the shipped cards (what `zoo eval` measured): a circuit verdict on a model
    that fails a question family would be a verdict about a model that does not really add."""
    from circuitspec.models.zoo import list_zoo

    cards = [c for c in list_zoo() if c.task.op == "add" and c.architecture.n_layers >= 2]
    assert len(cards) >= 8
    for card in cards:
        families = card.results.families
        assert families, f"{card.name}: no families measured"
        failed = {name: f.failures for name, f in families.items() if f.failures}
        assert not failed, f"{card.name} fails {failed}"
        search = card.results.search
        assert search is not None and search.questions >= 100_000 and search.failures == 0, (card.name, search)
