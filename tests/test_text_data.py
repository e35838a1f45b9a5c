"""Text and audio data: tokenizer, file splits, Shakespeare by play, mu-law WAV, training chunks."""

from __future__ import annotations

import math
import wave

import pytest
import torch

from chainrule.data import load_dataset
from chainrule.data.shakespeare import TEST_PLAYS, VAL_PLAYS, plain_text
from chainrule.data.text import read_text, text_file
from chainrule.data.wav import mu_law_decode, mu_law_encode, read_wav, write_wav
from chainrule.errors import ChainruleError
from chainrule.evaluation import eval_chunks
from chainrule.tokenizer import CharTokenizer
from chainrule.training import BOS_FRACTION, TrainChunks

LINE = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"


def test_tokenizer_round_trip_and_unknown_characters() -> None:
    tok = CharTokenizer.from_text(LINE)
    assert tok.decode(tok.encode(LINE)) == LINE and tok.vocab == "".join(sorted(set(LINE)))
    with pytest.raises(ChainruleError, match=r"2 character\(s\) outside .*'Z' \(2x\), 'é' \(1x\)"):
        tok.encode("ZZé to be", what="prompt")
    with pytest.raises(ChainruleError, match="at least 2"):
        CharTokenizer("aaa")


def test_text_file_splits_by_offset_with_a_training_vocabulary(tmp_path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(("\ufeff" + LINE * 40).replace("\n", "\r\n").encode("utf-8"))
    d = load_dataset(f"text:{path}")
    n = len(LINE) * 40
    assert d.train.numel() + d.val.numel() + d.test.numel() == n
    assert d.val.numel() == round(0.95 * n) - round(0.9 * n) and d.unit == "char"
    assert d.tokenizer.decode(d.train[: len(LINE)]) == LINE  # BOM dropped, CRLF -> LF
    path.write_text(LINE * 40 + "Zebra")  # Z only in the test part: still in the vocabulary
    d = text_file(path)
    assert "Z" in d.tokenizer.vocab and "Z" not in d.texts["train"]
    assert d.tokenizer.decode(d.test[-5:]) == "Zebra"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"caf\xe9 ok", "not UTF-8 .*0xe9 at offset 3"),
        (b"short", "at least"),
    ],
)
def test_bad_text_files(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ChainruleError, match=message):
        load_dataset(f"text:{path}")
    with pytest.raises(ChainruleError, match="not found"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(ChainruleError, match="needs a file"):
        load_dataset("text:")


def test_plain_text_follows_the_data_notes() -> None:
    md = "# Hamlet\n## ACT I\n\n\n\n**HAMLET**\nTo be, or not  \n_Exit_ __\\[Aside]_\n"
    assert plain_text(md) == "HAMLET:\nTo be, or not\nExit [Aside]"


@pytest.mark.network
def test_shakespeare_is_split_by_play() -> None:
    d = load_dataset("shakespeare")
    assert d.num_values == 80 and len(d.tokenizer) == 80
    sizes = {s: len(d.texts[s]) for s in ("train", "val", "test")}
    assert sizes == {"train": 4_105_358, "val": 351_126, "test": 500_107}
    assert d.texts["test"].count("HAMLET:") > 300 and "HAMLET:" not in d.texts["train"] + d.texts["val"]
    assert "MACBETH:" in d.texts["val"] and "MACBETH:" not in d.texts["train"] + d.texts["test"]
    assert not set(VAL_PLAYS) & set(TEST_PLAYS)
    assert torch.equal(d.test, d.tokenizer.encode(d.texts["test"]))


def test_mu_law_round_trip_and_wav_files(tmp_path) -> None:
    x = torch.linspace(-1, 1, 2001)
    q = mu_law_encode(x)
    assert q.min() == 0 and q.max() == 255 and (q[1:] >= q[:-1]).all()
    assert (mu_law_decode(q) - x).abs().max() < 0.022  # half a step of 2/255 near +-1, finer near 0
    assert (mu_law_decode(q) - x)[990:1011].abs().max() < 5e-4  # |x| <= 0.01
    t = torch.arange(8000) / 8000
    sine = 0.5 * torch.sin(2 * math.pi * 440 * t)
    path = write_wav(tmp_path / "a.wav", sine, 8000)
    back, rate = read_wav(path)
    assert rate == 8000 and (back - sine).abs().max() < 1e-4
    d = load_dataset(f"wav:{path}")
    assert d.num_values == 256 and d.sample_rate == 8000 and d.tokenizer is None and d.unit == "sample"
    assert d.train.numel() + d.val.numel() + d.test.numel() == 8000
    with wave.open(str(tmp_path / "u8.wav"), "wb") as w:  # 8-bit stereo is read and mixed to mono
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(100)
        w.writeframes(bytes([128, 128, 255, 1] * 100))
    assert read_wav(tmp_path / "u8.wav")[0].abs().max() < 0.01
    (tmp_path / "no.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ChainruleError, match="not a PCM WAV"):
        load_dataset(f"wav:{tmp_path / 'no.wav'}")


def test_training_windows_and_streams() -> None:
    tokens = torch.arange(10_000) % 50
    windows = TrainChunks(tokens, batch=8, seq_len=32, streams=False, bos=50, seed=0)
    batches = list(windows)
    assert len(batches) == len(windows) == (10_000 - 32) // (8 * 32)
    x = torch.cat([b for b, fresh in batches])
    assert x.shape[1] == 33 and all(fresh for _, fresh in batches)
    body = x[:, 1:]
    assert ((body[:, 1:] - body[:, :-1]) % 50 == 1).all()  # contiguous windows of the text
    assert abs((x[:, 0] == 50).float().mean().item() - BOS_FRACTION) < 0.05
    streams = TrainChunks(tokens, batch=4, seq_len=16, streams=True, bos=50, seed=0)
    (a, fa), (b, fb) = next(iter(streams)), next(iter(streams))  # epochs continue the streams
    assert fa and not fb and (a[:, 0] == 50).all()
    assert torch.equal(b[:, 0], a[:, -1])  # the next chunk starts where the last one stopped
    with pytest.raises(ChainruleError, match="too few"):
        TrainChunks(tokens[:100], batch=8, seq_len=32, streams=False, bos=50, seed=0)


def test_eval_chunks_cover_every_token_once() -> None:
    tokens = torch.arange(103)
    seen = torch.cat([x[v] for x, v, _ in eval_chunks(tokens, streams=4, chunk=5)])
    assert torch.equal(seen.sort().values, tokens)


@pytest.mark.network
def test_plays_text_script_writes_the_file_the_readme_figures_were_measured_on() -> None:
    import hashlib

    from scripts.plays_text import plays_text

    text = plays_text()
    assert len(text) == 4_956_521
    assert hashlib.md5(text.encode()).hexdigest() == "2463c22a7c6cbf5a058bd7ab3b847820"
