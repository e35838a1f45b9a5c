"""Bounded memory and safe outputs: `sample` and `generate` stream in chunks, refuse outputs that
could destroy a model or overwrite a file unasked, and the VAE's log_prob is chunked with
gradients on (checked by what autograd keeps, not by measuring memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chainrule.cli import main
from chainrule.cli import sample as sample_cmd
from chainrule.models.nade import NADE
from chainrule.models.transformer import CausalTransformer
from chainrule.models.vae import VAE
from chainrule.persistence import save


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def nade_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save(NADE(9, hidden=4, image_shape=[3, 3]), tmp_path_factory.mktemp("m") / "model")


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = CausalTransformer(vocab="ab c\n", d_model=8, layers=1, heads=2, block_size=4, mlp_ratio=2)
    return save(model, tmp_path_factory.mktemp("t") / "model")


def test_sample_streams_in_chunks_to_npy_and_csv(capsys, tmp_path, nade_dir, monkeypatch) -> None:
    assert run(capsys, "sample", str(nade_dir), "-n", "25", "--out", str(tmp_path / "one.npy"))[0] == 0
    monkeypatch.setattr(sample_cmd, "SAMPLE_CHUNK", 7)  # 25 = 7 + 7 + 7 + 4
    for name in ("many.npy", "many.csv"):
        assert run(capsys, "sample", str(nade_dir), "-n", "25", "--out", str(tmp_path / name))[0] == 0
    many = np.load(tmp_path / "many.npy")
    assert many.shape == (25, 9) and many.dtype == np.uint8 and set(np.unique(many)) <= {0, 1}
    rows = (tmp_path / "many.csv").read_text().splitlines()
    assert rows[0] == ",".join(f"x{i}" for i in range(9))
    assert np.array_equal(np.array([[int(v) for v in r.split(",")] for r in rows[1:]]), many)
    assert np.load(tmp_path / "one.npy").shape == (25, 9)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "out, extra, message",
    [
        ("{model}/model.safetensors", [], "inside the model folder"),
        ("{model}/new.npy", [], "inside the model folder"),
        ("{tmp}", [], "is an existing folder"),
        ("{tmp}/no/such/x.npy", [], "does not exist; create it first"),
        ("{tmp}/grid.png", ["-n", "1025"], "at most 1024 samples"),
    ],
)
def test_sample_refuses_unsafe_outputs(capsys, tmp_path, nade_dir, out, extra, message) -> None:
    before = {p: p.read_bytes() for p in nade_dir.iterdir()}
    path = out.format(model=nade_dir, tmp=tmp_path)
    code, _, err = run(capsys, "sample", str(nade_dir), "--out", path, *extra)
    assert code == 2 and message in err and err.strip().count("\n") == 0
    assert {p: p.read_bytes() for p in nade_dir.iterdir()} == before


def test_existing_output_needs_force(capsys, tmp_path, nade_dir, text_dir) -> None:
    target = tmp_path / "s.csv"
    target.write_text("keep")
    code, _, err = run(capsys, "sample", str(nade_dir), "-n", "3", "--out", str(target))
    assert code == 2 and "pass --force" in err and target.read_text() == "keep"
    assert run(capsys, "sample", str(nade_dir), "-n", "3", "--out", str(target), "--force")[0] == 0
    assert len(target.read_text().splitlines()) == 4
    code, _, err = run(capsys, "generate", str(text_dir), "-n", "3", "--out", str(target))
    assert code == 2 and "pass --force" in err
    code, _, err = run(capsys, "generate", str(text_dir), "-n", "3", "--out", str(text_dir / "config.json"))
    assert code == 2 and "inside the model folder" in err


def test_generate_streams_the_same_text(capsys, tmp_path, text_dir) -> None:
    code, out, err = run(capsys, "generate", str(text_dir), "--prompt", "ab", "-n", "2500", "--seed", "4")
    assert code == 0 and json.loads(err.strip().splitlines()[-1])["new_tokens"] == 2500
    from chainrule.persistence import load

    model = load(text_dir)
    ids = model.generate(model.encode("ab"), 2500, generator=torch.Generator().manual_seed(4))
    assert out == model.decode(ids[0]) + "\n"
    pieces = list(model.generate_stream(model.encode("ab"), 2500, generator=torch.Generator().manual_seed(4)))
    assert [p.shape[1] for p in pieces] == [2, 1000, 1000, 500]
    assert run(capsys, "generate", str(text_dir), "--prompt", "ab", "-n", "2500", "--seed", "4",
               "--out", str(tmp_path / "g.txt"))[0] == 0  # fmt: skip
    assert (tmp_path / "g.txt").read_text() == out


def test_generate_has_a_token_limit(capsys, text_dir) -> None:
    code, _, err = run(capsys, "generate", str(text_dir), "-n", "5000001", "--samples", "2")
    assert code == 2 and "the most one run makes is 10,000,000" in err


def test_vae_log_prob_with_gradients_keeps_only_chunk_inputs() -> None:
    """With gradients on, autograd keeps each chunk's inputs (x and the normal draws), not its
    decoder activations: what it saves for the whole batch is about the size of the draws."""
    torch.manual_seed(0)
    vae = VAE(dim=16, latent=3, hidden=[32])
    x = (torch.rand(300, 16) > 0.5).float()
    saved = 0

    def pack(t):
        nonlocal saved
        saved += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lp = vae._importance(vae.prepare(x), 50, torch.Generator().manual_seed(1), 500, with_se=False)[0]
    lp.sum().backward()
    draws = 300 * 50 * 3  # eps: examples x draws x latent; activations would be 300 x 50 x 32 each
    params = sum(p.numel() for p in vae.parameters())
    assert saved <= 2 * draws + 2 * x.numel() + params, saved
    with torch.no_grad():
        ref = vae._importance(vae.prepare(x), 50, torch.Generator().manual_seed(1), 500, with_se=False)[0]
    assert torch.allclose(lp.detach(), ref)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())
