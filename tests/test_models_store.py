"""Saving and loading: atomic writes, hash and shape checks, clear errors, TransformerLens .pth round trip."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from circuitspec.errors import ModelError
from circuitspec.models import export_pth, import_pth, load, model_from_tensors, plan, save
from circuitspec.models.build import build_bridge, state_dict
from circuitspec.models.tlformat import to_tl


@pytest.fixture()
def model():
    """An untrained 4-digit model with random weights (loading must reproduce it exactly)."""
    card = plan("add_d4_l2_h3_t1K_s7", width=48, d_head=16)
    bridge = build_bridge(card.architecture, seed=7)
    with torch.no_grad():  # make biases and LN non-trivial so a wrong mapping shows
        for name, p in bridge.named_parameters():
            if "bias" in name or "ln" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    return model_from_tensors(card, state_dict(bridge))


@pytest.fixture()
def tokens(model):
    return model.task.generate(32, torch.Generator().manual_seed(0))


def test_save_load_round_trip(model, tokens, tmp_path):
    path = save(model, tmp_path)
    assert path == tmp_path / f"{model.name}.json"
    assert len(model.card.weights_sha256) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{model.name}.json", f"{model.name}.safetensors"]
    for ref in (model.name, str(path), str(tmp_path / f"{model.name}.safetensors"), str(tmp_path)):
        again = load(ref, folder=tmp_path) if ref == model.name else load(ref)
        assert again.card == model.card
        assert torch.equal(again.bridge(tokens), model.bridge(tokens))
    assert load("add_d4_l2_h3_s7", folder=tmp_path).name == model.name  # name without _tNK


def test_save_refuses_to_overwrite(model, tmp_path):
    save(model, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with torch.no_grad():
        model.bridge.state_dict()["embed.weight"].add_(1.0)
    with pytest.raises(ModelError, match="already exists"):
        save(model, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_interrupted_save_leaves_old_files_intact(model, tmp_path, monkeypatch):
    save(model, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save(model, tmp_path, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp files left either
    load(model.name, folder=tmp_path)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_corrupt_weights_are_refused(model, tmp_path):
    save(model, tmp_path)
    weights = tmp_path / f"{model.name}.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = _snapshot(tmp_path)
    with pytest.raises(ModelError) as err:
        load(model.name, folder=tmp_path)
    assert err.value.file == str(weights) and "sha256" in err.value.message and "retrain" in err.value.hint
    assert _snapshot(tmp_path) == before


def test_truncated_weights_without_hash_are_refused(model, tmp_path):
    save(model, tmp_path)
    card_path = tmp_path / f"{model.name}.json"
    card = json.loads(card_path.read_text())
    card["weights_sha256"] = ""  # a hand-made card without a hash still gets a clear error
    card_path.write_text(json.dumps(card))
    weights = tmp_path / f"{model.name}.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load(model.name, folder=tmp_path)


def test_card_that_does_not_match_its_weights(model, tmp_path):
    save(model, tmp_path)
    card_path = tmp_path / f"{model.name}.json"
    card = json.loads(card_path.read_text())
    card["architecture"]["d_mlp"] = 64
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as err:
        load(str(card_path))
    assert "blocks.0.mlp.in.weight" in err.value.message and err.value.file.endswith(".safetensors")


def test_corrupt_or_missing_files(model, tmp_path):
    save(model, tmp_path)
    (tmp_path / f"{model.name}.safetensors").unlink()
    with pytest.raises(ModelError, match="weights file is missing"):
        load(model.name, folder=tmp_path)
    (tmp_path / f"{model.name}.json").write_text("{not json")
    with pytest.raises(ModelError, match="does not validate") as err:
        load(model.name, folder=tmp_path)
    assert err.value.file == str(tmp_path / f"{model.name}.json")


def test_unknown_name_suggests_the_closest(model, tmp_path):
    save(model, tmp_path)
    with pytest.raises(ModelError) as err:
        load("add_d4_l2_h4_t1K_s7", folder=tmp_path)
    assert "unknown model" in err.value.message and model.name in err.value.hint
    with pytest.raises(ModelError, match="no model at this path"):
        load(str(tmp_path / "nothing" / "here"))
    longer = model_from_tensors(model.card.model_copy(update={"name": "add_d4_l2_h3_t2K_s7"}), state_dict(model.bridge))
    save(longer, tmp_path)
    with pytest.raises(ModelError, match="ambiguous") as err:
        load("add_d4_l2_h3_s7", folder=tmp_path)
    assert "add_d4_l2_h3_t1K_s7" in err.value.hint and "add_d4_l2_h3_t2K_s7" in err.value.hint
    assert load("add_d4_l2_h3_t2K_s7", folder=tmp_path).name == "add_d4_l2_h3_t2K_s7"


# --- TransformerLens format -------------------------------------------------------------------


def _layer_norm(x, w, b):
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w + b


def tl_reference_forward(W: dict[str, torch.Tensor], tokens: torch.Tensor, n_layers: int) -> torch.Tensor:
    """HookedTransformer's computation written out from its weight conventions."""
    T = tokens.shape[1]
    x = W["embed.W_E"][tokens] + W["pos_embed.W_pos"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for layer in range(n_layers):
        b = f"blocks.{layer}"
        h = _layer_norm(x, W[f"{b}.ln1.w"], W[f"{b}.ln1.b"])
        q = torch.einsum("btd,hde->bthe", h, W[f"{b}.attn.W_Q"]) + W[f"{b}.attn.b_Q"]
        k = torch.einsum("btd,hde->bthe", h, W[f"{b}.attn.W_K"]) + W[f"{b}.attn.b_K"]
        v = torch.einsum("btd,hde->bthe", h, W[f"{b}.attn.W_V"]) + W[f"{b}.attn.b_V"]
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
        pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
        x = x + torch.einsum("bqhe,hed->bqd", z, W[f"{b}.attn.W_O"]) + W[f"{b}.attn.b_O"]
        h = _layer_norm(x, W[f"{b}.ln2.w"], W[f"{b}.ln2.b"])
        x = x + torch.relu(h @ W[f"{b}.mlp.W_in"] + W[f"{b}.mlp.b_in"]) @ W[f"{b}.mlp.W_out"] + W[f"{b}.mlp.b_out"]
    x = _layer_norm(x, W["ln_final.w"], W["ln_final.b"])
    return x @ W["unembed.W_U"] + W["unembed.b_U"]


def test_tl_export_follows_transformer_lens_conventions(model, tokens):
    tl = to_tl(state_dict(model.bridge), model.card.architecture)
    a = model.card.architecture
    assert tl["blocks.0.attn.W_Q"].shape == (a.n_heads, a.d_model, a.d_head)
    assert tl["blocks.1.attn.W_O"].shape == (a.n_heads, a.d_head, a.d_model)
    assert tl["blocks.0.mlp.W_in"].shape == (a.d_model, a.d_mlp)
    assert tl["unembed.W_U"].shape == (a.d_model, a.d_vocab)
    with torch.no_grad():
        expected = tl_reference_forward(tl, tokens, a.n_layers)
        got = model.bridge(tokens)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # hook_z is [batch, pos, head, d_head] and head h uses W_Q[h]
    _, cache = model.bridge.run_with_cache(tokens[:2])
    assert tuple(cache["blocks.0.attn.hook_z"].shape) == (2, a.n_ctx, a.n_heads, a.d_head)
    h = _layer_norm(model.bridge.embed(tokens[:2]) + tl["pos_embed.W_pos"], tl["blocks.0.ln1.w"], tl["blocks.0.ln1.b"])
    q2 = h @ tl["blocks.0.attn.W_Q"][2] + tl["blocks.0.attn.b_Q"][2]
    torch.testing.assert_close(cache["blocks.0.attn.hook_q"][:, :, 2], q2, rtol=1e-4, atol=1e-5)


def test_pth_round_trip_gives_the_same_logits(model, tokens, tmp_path):
    path = export_pth(model, tmp_path / "paper_style.pth")
    raw = torch.load(path, weights_only=True)
    raw["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)  # buffers HookedTransformer state dicts carry
    raw["blocks.0.attn.mask"] = torch.ones(model.card.architecture.n_ctx, model.card.architecture.n_ctx).tril().bool()
    torch.save(raw, path)
    imported = import_pth(path, "add")
    assert imported.card.architecture == model.card.architecture
    assert imported.card.task.digits == 4 and imported.name == "paper_style"
    with torch.no_grad():
        assert torch.equal(imported.bridge(tokens), model.bridge(tokens))
    save(imported, tmp_path)
    assert torch.equal(load("paper_style", folder=tmp_path).bridge(tokens), model.bridge(tokens))


class NotATensor:
    """Unpickling this would run code: weights_only loading must refuse it."""


def test_pth_errors(model, tmp_path):
    pickled = tmp_path / "pickled.pth"
    torch.save({"embed.W_E": NotATensor()}, pickled)
    with pytest.raises(ModelError, match="weights_only=True"):
        import_pth(pickled, "add")
    nested = tmp_path / "nested.pth"
    torch.save({"cfg": {"a": 1}}, nested)
    with pytest.raises(ModelError, match="not a state dict of tensors"):
        import_pth(nested, "add")
    tl = to_tl(state_dict(model.bridge), model.card.architecture)
    del tl["blocks.1.mlp.W_out"]
    torch.save(tl, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="missing blocks.1.mlp.W_out"):
        import_pth(tmp_path / "partial.pth", "add")
    with pytest.raises(ModelError, match="checkpoint not found"):
        import_pth(tmp_path / "none.pth", "add")
