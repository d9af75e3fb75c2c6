"""TransformerLens checkpoints of every supported architecture: import, export, import again;
and what no supported architecture fits is refused with the reason."""

from __future__ import annotations

import pytest
import torch

from circuitspec.cli import main
from circuitspec.errors import ModelError
from circuitspec.models.build import build_bridge, state_dict
from circuitspec.models.card import Architecture
from circuitspec.models.tlformat import to_tl
from circuitspec.models.zoo import export_pth, import_pth, load, save

DIGITS = 2
N_CTX = 3 * DIGITS + 4
ARCHS = {
    "ln-relu": dict(),
    "no-norm": dict(normalization=None),
    "lnpre-gelu": dict(normalization="LNPre", act_fn="gelu"),
    "rms-rotary-silu": dict(normalization="RMS", positional_embedding="rotary", act_fn="silu"),
    "attn-only": dict(attn_only=True, d_mlp=0),
    "no-norm-attn-only": dict(normalization=None, attn_only=True, d_mlp=0, act_fn="gelu_new"),
    "wide-vocab-ln-gelu_new": dict(d_vocab=20, act_fn="gelu_new"),
}


def _arch(**changes) -> Architecture:
    return Architecture(**{**dict(n_layers=2, n_heads=2, d_model=32, d_head=8, d_mlp=64, n_ctx=N_CTX), **changes})


def _checkpoint(tmp_path, arch: Architecture, name: str = "ckpt"):
    torch.manual_seed(0)
    bridge = build_bridge(arch, seed=3)
    with torch.no_grad():  # non-trivial norm weights and biases, so a dropped or swapped tensor shows
        for p in bridge.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / f"{name}.pth"
    torch.save(to_tl(state_dict(bridge), arch), path)
    return bridge, path


@pytest.mark.parametrize("which", sorted(ARCHS))
def test_round_trip(which, tmp_path):
    torch.set_num_threads(1)
    arch = _arch(**ARCHS[which])
    bridge, path = _checkpoint(tmp_path, arch)
    tokens = torch.randint(0, 15, (4, N_CTX), generator=torch.Generator().manual_seed(1))
    first = import_pth(path, "add", act_fn=arch.act_fn, normalization="LNPre" if arch.normalization == "LNPre" else None)
    assert first.card.architecture == arch
    with torch.no_grad():
        want = bridge(tokens)
        assert torch.equal(first.bridge(tokens), want)
        again = import_pth(export_pth(first, tmp_path / "again.pth"), "add", act_fn=arch.act_fn, normalization=arch.normalization if arch.normalization == "LNPre" else None)
        assert again.card.architecture == arch and torch.equal(again.bridge(tokens), want)
        save(again, tmp_path / "zoo")
        assert torch.equal(load("again", folder=tmp_path / "zoo").bridge(tokens), want)


def _refused(tl: dict, tmp_path, match: str, **kw):
    path = tmp_path / "bad.pth"
    torch.save(tl, path)
    with pytest.raises(ModelError, match=match) as info:
        import_pth(path, "add", **kw)
    assert info.value.file == str(path)


def test_unsupported_checkpoints_are_refused_with_the_reason(tmp_path):
    arch = _arch()
    _, path = _checkpoint(tmp_path, arch)
    tl = torch.load(path, weights_only=True)
    _refused({**tl, "blocks.0.mlp.W_gate": tl["blocks.0.mlp.W_in"]}, tmp_path, "gated MLP")
    gqa = dict(tl, **{"blocks.0.attn.W_K": tl["blocks.0.attn.W_K"][:1]})
    _refused(gqa, tmp_path, "grouped-query")
    _refused({k: v for k, v in tl.items() if k != "unembed.W_U"}, tmp_path, "tied embeddings")
    _refused({k: v for k, v in tl.items() if k != "pos_embed.W_pos"}, tmp_path, "positional embedding cannot be read")
    _refused(tl, tmp_path, "'RMS' was given", normalization="RMS")
    rot = _arch(positional_embedding="rotary")
    _, rpath = _checkpoint(tmp_path, rot, "rot")
    rtl = torch.load(rpath, weights_only=True)
    _refused({**rtl, "blocks.0.attn.rotary_sin": rtl["blocks.0.attn.rotary_sin"][:, :4]}, tmp_path, "partial rotary")
    _refused({**rtl, "blocks.0.attn.rotary_sin": 2 * rtl["blocks.0.attn.rotary_sin"]}, tmp_path, "base 10000")
    _refused({**tl, "blocks.1.attn.W_Q": tl["blocks.1.attn.W_Q"][:, :, :4]}, tmp_path, "wrong shape blocks.1.attn.W_Q")


def test_zoo_import_cli(tmp_path, capsys):
    arch = _arch(normalization=None, attn_only=True, d_mlp=0)
    _, path = _checkpoint(tmp_path, arch, "lnfree")
    out = tmp_path / "zoo"
    assert main(["zoo", "import", str(path), "--op", "add", "--out", str(out), "--questions", "0"]) == 0
    assert load("lnfree", folder=out).card.architecture == arch
    assert main(["zoo", "import", str(path), "--op", "add", "--out", str(out), "--questions", "0", "--act-fn", "tanh"]) == 2
    tl = torch.load(path, weights_only=True)
    torch.save({**tl, "blocks.0.mlp.W_gate": torch.zeros(32, 64)}, tmp_path / "gated.pth")
    capsys.readouterr()
    assert main(["zoo", "import", str(tmp_path / "gated.pth"), "--op", "add", "--out", str(out), "--questions", "0"]) == 2
    assert "gated MLP" in capsys.readouterr().err
