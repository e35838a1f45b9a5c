"""The text workflow from the shell: train on a user's file, eval in nats/char and bits/char,
generate with a prompt (cached == --no-cache), and clear one-line errors for bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main
from chainrule.data.wav import read_wav, write_wav

TEXT = "".join(f"ROMEO: line {i % 7} of the play, said Juliet.\n" for i in range(120))


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny Transformer trained for a few steps on a text file, through the CLI."""
    tmp = tmp_path_factory.mktemp("text")
    (tmp / "play.txt").write_text(TEXT)
    recipe = tmp / "r.yaml"
    recipe.write_text(
        "model: {name: transformer, d_model: 16, layers: 1, heads: 2, block_size: 16}\n"
        "data: {name: shakespeare}\n"
        "train: {batch_size: 4, max_epochs: 2, limit_train_batches: 3, lr: 0.01, progress: false}\n"
    )
    rc = main(["train", str(recipe), "--data", f"text:{tmp / 'play.txt'}", "--out", str(tmp / "run")])
    assert rc == 0
    metrics = json.loads((tmp / "run" / "model" / "metrics.json").read_text())
    return tmp, tmp / "run" / "model", metrics


def test_train_and_eval_report_nats_and_bits_per_char(trained, capsys) -> None:
    tmp, model_dir, metrics = trained
    test = metrics["test"]
    assert test["chars"] == len(TEXT) - round(0.95 * len(TEXT))
    assert test["bits_per_char"] == pytest.approx(test["nats_per_char"] / math.log(2))
    rc, out, _ = run(capsys, "eval", str(model_dir), "--data", f"text:{tmp / 'play.txt'}")
    line = json.loads(out)
    assert rc == 0 and line["nats_per_char"] == pytest.approx(test["nats_per_char"], rel=1e-9)
    assert line["chars"] == test["chars"] and line["bits_per_char"] > 0


def test_generate_is_reproducible_and_the_cache_changes_nothing(trained, capsys) -> None:
    _, model_dir, _ = trained
    outs = [
        run(capsys, "generate", str(model_dir), "--prompt", "ROMEO:", "-n", "40", "--seed", "3", *extra)
        for extra in ([], [], ["--no-cache"])
    ]
    assert all(rc == 0 for rc, _, _ in outs)
    texts = [out for _, out, _ in outs]
    assert texts[0] == texts[1] == texts[2] and texts[0].startswith("ROMEO:") and len(texts[0]) == 47
    assert json.loads(outs[0][2])["new_tokens"] == 40
    rc, out, _ = run(capsys, "generate", str(model_dir), "--prompt", "ROMEO:", "-n", "20", "--top-k", "3")
    assert rc == 0 and len(out) == 27
    rc, out, _ = run(capsys, "generate", str(model_dir), "--prompt", "ROMEO:", "-n", "0")
    assert rc == 0 and out == "ROMEO:\n"  # -n 0: the prompt, unchanged


@pytest.mark.parametrize(
    "args,message",
    [
        (["--prompt", "ROMÉO:"], "prompt has 1 character.* outside the vocabulary: 'É'"),
        (["-n", "-1"], "-n must be >= 0"),
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--top-p", "1.5"], r"top_p must be a number in \(0, 1\]"),
    ],
)
def test_generate_bad_input_is_one_line(trained, capsys, args, message) -> None:
    _, model_dir, _ = trained
    rc, out, err = run(capsys, "generate", str(model_dir), *args)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert pytest.importorskip("re").search(message, err), err


def test_bad_text_files_from_the_shell(trained, tmp_path) -> None:
    _, model_dir, _ = trained
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1") * 50)
    for name, message in [("empty.txt", "is empty"), ("latin1.txt", "is not UTF-8 text")]:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "chainrule.cli",
                "eval",
                str(model_dir),
                "--data",
                f"text:{tmp_path / name}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_wavenet_on_mu_law_audio(tmp_path, capsys) -> None:
    """`--data wav:PATH` trains a WaveNet on 8-bit mu-law codes; generate writes a WAV."""
    import torch

    t = torch.arange(4000) / 4000
    write_wav(tmp_path / "tone.wav", 0.5 * torch.sin(2 * math.pi * 220 * t), 4000)
    recipe = tmp_path / "w.yaml"
    recipe.write_text(
        "model: {name: wavenet, channels: 8, skip_channels: 8, dilations: [1, 2, 4, 8]}\n"
        "data: {name: shakespeare}\n"
        "train: {batch_size: 4, seq_len: 64, max_epochs: 1, limit_train_batches: 3, progress: false}\n"
    )
    rc, out, _ = run(
        capsys, "train", str(recipe), "--data", f"wav:{tmp_path / 'tone.wav'}", "--out", str(tmp_path / "r")
    )
    assert rc == 0 and "nats_per_sample" in json.loads(out.splitlines()[-1])["test"]
    rc, _, err = run(
        capsys, "generate", str(tmp_path / "r" / "model"), "-n", "50", "--out", str(tmp_path / "g.wav")
    )
    assert rc == 0, err
    audio, rate = read_wav(tmp_path / "g.wav")
    assert rate == 4000 and audio.numel() == 50
    rc, _, err = run(capsys, "eval", str(tmp_path / "r" / "model"), "--data", "text:" + str(recipe))
    assert rc == 2 and "audio" in err
