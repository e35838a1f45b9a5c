"""Compression with a model (chainrule.coding, `chainrule compress` / `decompress`): exact round
trips with every codable registered model, code lengths within 1 % of -log2 p(x), and clear errors
for a wrong model, a damaged file and an existing output."""

from __future__ import annotations

import io
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from chainrule import cli
from chainrule.coding import compress, decompress, weights_sha256
from chainrule.coding.container import read_header, unpack
from chainrule.coding.model_coder import check_codable
from chainrule.errors import ChainruleError
from chainrule.models.base import MODEL_REGISTRY, build_model, models_sequences
from chainrule.models.char_rnn import CharRNN
from chainrule.models.nade import NADE
from chainrule.models.transformer import CausalTransformer as Transformer
from chainrule.persistence import read_config, register_everything, save

register_everything()
TEXT = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 3
VOCAB = "".join(sorted(set(TEXT)))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def codable_image_models() -> list[str]:
    names = []
    for name, cls in sorted(MODEL_REGISTRY.items()):
        model = build_model(name, **cls.tiny_config())
        try:
            if check_codable(model) == "images":
                names.append(name)
        except ChainruleError:
            pass
    return names


@pytest.mark.parametrize("name", codable_image_models())
def test_every_codable_image_model_round_trips_exactly(name):
    torch.manual_seed(0)
    model = build_model(name, **MODEL_REGISTRY[name].tiny_config())
    x = model.sample(7, generator=torch.Generator().manual_seed(1))
    blob = compress(model, x, chunk=3, progress=False)  # chunks of 3, 3 and 1 images
    assert torch.equal(decompress(model, blob, progress=False), x.round().long())


def test_refused_models_say_why():
    for name in ("vae", "gaussian", "bayesian-network"):
        model = build_model(name, **MODEL_REGISTRY[name].tiny_config())
        with pytest.raises(ChainruleError, match="compression needs|continuous|exact likelihood"):
            check_codable(model)


@pytest.mark.parametrize("cls", [CharRNN, Transformer])
def test_text_models_round_trip_and_code_length_is_within_one_percent(cls):
    torch.manual_seed(0)
    model = cls(vocab=VOCAB, **{k: v for k, v in cls.tiny_config().items() if k != "num_values"})
    assert models_sequences(model)
    blob = compress(model, TEXT, progress=False)
    assert decompress(model, blob, progress=False) == TEXT
    header = read_header(blob)
    code_bits = 8 * len(unpack(blob)[1])
    ideal = float(-model.log_prob(model.encode(TEXT)[None]).detach()) / math.log(2)
    assert header["length"] == len(TEXT) and abs(code_bits - ideal) < 0.01 * ideal


def test_image_code_length_is_within_one_percent_of_neg_log2_p():
    torch.manual_seed(0)
    model = NADE(16, hidden=8)
    x = model.sample(300, generator=torch.Generator().manual_seed(2))
    blob = compress(model, x, progress=False)
    code_bits = 8 * len(unpack(blob)[1])
    ideal = float(-model.log_prob(x).detach().double().sum()) / math.log(2)
    assert abs(code_bits - ideal) < 0.01 * ideal


def test_generate_follows_a_choice_rule():
    model = CharRNN(vocab=VOCAB, embed=4, hidden=6)
    wanted = model.encode("tobe")
    seen = []

    def choose(logits, i):
        seen.append((tuple(logits.shape), i))
        return wanted[i : i + 1]

    assert torch.equal(model.generate(None, 4, choose=choose)[0], wanted)
    assert seen == [((1, len(VOCAB)), i) for i in range(4)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compress")
    torch.manual_seed(0)
    nade = NADE(9, hidden=4, image_shape=[3, 3])
    images = nade.sample(40, generator=torch.Generator().manual_seed(3)).numpy().astype(np.uint8)
    np.save(root / "images.npy", images.reshape(40, 3, 3))
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    return {
        "root": root,
        "nade": save(nade, root / "nade"),
        "other": save(NADE(9, hidden=4, image_shape=[3, 3]), root / "other"),
        "rnn": save(CharRNN(vocab=VOCAB, embed=4, hidden=6), root / "rnn"),
    }


def test_cli_round_trip_images_npy_and_csv(saved):
    root = saved["root"]
    code, out, err = run_cli("compress", str(saved["nade"]), str(root / "images.npy"), str(root / "i.crac"))
    assert code == 0, err
    assert '"bits_per_image"' in out
    assert (
        read_header((root / "i.crac").read_bytes())["weights_sha256"]
        == read_config(saved["nade"])["weights_sha256"]
    )
    for name in ("back.npy", "back.csv"):
        code, _, err = run_cli("decompress", str(saved["nade"]), str(root / "i.crac"), str(root / name))
        assert code == 0, err
    original = np.load(root / "images.npy")
    assert np.array_equal(np.load(root / "back.npy"), original)
    csv_rows = np.loadtxt(root / "back.csv", delimiter=",", skiprows=1, dtype=np.int64)
    assert np.array_equal(csv_rows, original.reshape(40, 9))
    code, _, err = run_cli("compress", str(saved["nade"]), str(root / "back.csv"), str(root / "c.crac"))
    assert code == 0, err
    assert (root / "c.crac").read_bytes()[-20:] == (root / "i.crac").read_bytes()[-20:]


def test_cli_round_trip_text(saved):
    root = saved["root"]
    assert run_cli("compress", str(saved["rnn"]), str(root / "text.txt"), str(root / "t.crac"))[0] == 0
    assert run_cli("decompress", str(saved["rnn"]), str(root / "t.crac"), str(root / "t.txt"))[0] == 0
    assert (root / "t.txt").read_bytes() == (root / "text.txt").read_bytes()


def test_cli_refuses_overwrite_wrong_model_and_damaged_files(saved):
    root, nade = saved["root"], str(saved["nade"])
    assert run_cli("compress", nade, str(root / "images.npy"), str(root / "w.crac"))[0] == 0
    code, _, err = run_cli("compress", nade, str(root / "images.npy"), str(root / "w.crac"))
    assert code == 2 and "--force" in err
    code, _, err = run_cli("decompress", str(saved["other"]), str(root / "w.crac"), str(root / "w.npy"))
    assert code == 2 and "compressed with another model" in err
    code, _, err = run_cli("decompress", str(saved["rnn"]), str(root / "w.crac"), str(root / "w.txt"))
    assert code == 2 and "another model" in err
    blob = bytearray((root / "w.crac").read_bytes())
    damaged = {
        "code": blob[:-3] + bytes([blob[-3] ^ 0x10]) + blob[-2:],
        "header": blob[:20] + bytes([blob[20] ^ 0x01]) + blob[21:],
        "truncated": blob[:-4],
        "foreign": b"PK\x03\x04 not ours",
    }
    for what, data in damaged.items():
        (root / f"{what}.crac").write_bytes(bytes(data))
        code, _, err = run_cli("decompress", nade, str(root / f"{what}.crac"), str(root / f"{what}.npy"))
        assert code == 2, (what, err)
        assert "corrupted" in err or "not a chainrule compressed file" in err, (what, err)


def test_cli_help_and_bad_inputs(saved):
    root, nade = saved["root"], str(saved["nade"])
    code, out, _ = run_cli("compress", "--help")
    assert code == 0 and "-log2 p(x)" in out
    (root / "bad.npy").write_bytes(b"not numpy")
    assert run_cli("compress", nade, str(root / "bad.npy"), str(root / "bad.crac"))[0] == 2
    np.save(root / "wide.npy", np.zeros((2, 10), dtype=np.uint8))
    code, _, err = run_cli("compress", nade, str(root / "wide.npy"), str(root / "wide.crac"))
    assert code == 2 and "chainrule: error" in err
    code, _, err = run_cli("compress", nade, str(root / "text.txt"), str(root / "x.crac"))
    assert code == 2 and ".npy or .csv" in err


def test_weights_sha256_matches_the_saved_config(saved):
    from chainrule.persistence import load

    assert weights_sha256(load(saved["nade"])) == read_config(saved["nade"])["weights_sha256"]
