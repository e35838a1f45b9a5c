"""Getting started, word for word: the shell commands of docs/getting-started/cli.md, run in order in
an empty folder, bring a CSV file, train on it, evaluate and sample; those of
docs/getting-started/text.md bring a text file, train a language model on it, evaluate and generate.

The only change to the commands: training runs are capped at 1 epoch (`train.max_epochs=1
train.progress=false` appended) to keep the test short. `.venv/bin/chainrule` is this checkout's
CLI, called in-process; other commands (`head`) run in bash. The install block is checked, not run.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
from docs_blocks import DOCS, ROOT, code_blocks

from chainrule.cli import main

pytestmark = pytest.mark.docs
PAGE = DOCS / "getting-started" / "cli.md"
TEXT_PAGE = DOCS / "getting-started" / "text.md"
CHAINRULE = ".venv/bin/chainrule"


def page_commands(page: Path = PAGE) -> tuple[list[str], list[str]]:
    """(install commands, the commands after them), one entry per line of the page's bash blocks."""
    install, commands = [], []
    for block in code_blocks(page):
        if block.lang != "bash":
            continue
        lines = [line.strip() for line in block.code.splitlines() if line.strip()]
        if block.attrs.get("title", "").startswith("install"):
            install += lines
        else:
            commands += lines
    return install, commands


def test_install_block_names_a_make_target() -> None:
    install, _ = page_commands()
    assert install == ["make install"]
    assert "\ninstall:" in (ROOT / "Makefile").read_text()


def run_page_commands(commands: list[str], tmp_path: Path, monkeypatch, capsys) -> dict[str, str]:
    """Run a page's commands in order in `tmp_path` (with recipes/, tests/ and zoo/ linked from the
    repository, as the page runs from its folder); return what each chainrule command printed."""
    for folder in ("recipes", "tests", "zoo"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds contention
    printed = {}
    try:
        for command in commands:
            argv = shlex.split(command)
            if argv[0] == CHAINRULE:
                if argv[1] == "train":
                    argv += ["train.max_epochs=1", "train.progress=false"]
                rc = main(argv[1:])
                out, err = capsys.readouterr()
                assert rc == 0, f"{command}\n{err}"
                printed[command] = out
            else:
                r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, f"{command}\n{r.stderr}"
    finally:
        torch.set_num_threads(threads)
    return printed


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_getting_started_word_for_word(tmp_path, monkeypatch, capsys) -> None:
    _, commands = page_commands()
    assert any(c.startswith(f"{CHAINRULE} train") for c in commands)
    printed = {k: last_json(v) for k, v in run_page_commands(commands, tmp_path, monkeypatch, capsys).items()}
    header = "asia,tub,smoke,lung,bronc,either,xray,dysp"
    assert Path("my-data.csv").read_text().splitlines()[0] == header
    samples = Path("samples.csv").read_text().splitlines()
    assert samples[0] == header and len(samples) == 101
    assert all(set(row.split(",")) <= {"0", "1"} for row in samples[1:])
    for run in ["runs/my-data", "runs/my-data-wide", "runs/my-data-nade"]:
        assert (Path(run) / "model" / "model.safetensors").is_file(), run
    trained = [v for k, v in printed.items() if " train " in k]
    assert all(m["test"]["n"] == 200 and m["dataset"] == "csv:my-data.csv" for m in trained)
    evaluated = [v for k, v in printed.items() if " eval " in k]
    assert evaluated and evaluated[0]["split"] == "test" and evaluated[0]["n"] == 200


def test_text_getting_started_word_for_word(tmp_path, monkeypatch, capsys) -> None:
    install, commands = page_commands(TEXT_PAGE)
    assert not install
    printed = run_page_commands(commands, tmp_path, monkeypatch, capsys)
    text = Path("my-text.txt").read_text()
    assert len(text) > 16000 and text.startswith("ROMEO:")
    trained = [last_json(v) for k, v in printed.items() if " train " in k]
    assert len(trained) == 2 and all(m["dataset"] == "text:my-text.txt" for m in trained)
    assert {m["model"] for m in trained} == {"transformer", "char-rnn"}
    for m in trained:
        assert m["test"]["chars"] == len(text) - round(0.95 * len(text))
        assert m["test"]["bits_per_char"] == pytest.approx(m["test"]["nats_per_char"] / math.log(2))
    evaluated = [last_json(v) for k, v in printed.items() if " eval " in k]
    assert evaluated[0]["nats_per_char"] == pytest.approx(trained[0]["test"]["nats_per_char"], rel=1e-6)
    generated = [v for k, v in printed.items() if " generate runs/" in k]
    assert len(generated) == 2 and all(
        g.startswith("ROMEO:") and len(g) == len("ROMEO:") + 200 + 1 for g in generated
    )
    for run in ["runs/my-text", "runs/my-text-lstm"]:
        assert (Path(run) / "model" / "model.safetensors").is_file(), run
