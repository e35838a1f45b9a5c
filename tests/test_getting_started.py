"""Getting started, word for word: the shell commands of docs/getting-started/cli.md, run in order in
an empty folder, bring a CSV file, train on it, evaluate and sample.

The only change to the commands: training runs are capped at 1 epoch (`train.max_epochs=1
train.progress=false` appended) to keep the test short. `.venv/bin/chainrule` is this checkout's
CLI, called in-process; other commands (`head`) run in bash. The install block is checked, not run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
from docs_blocks import DOCS, ROOT, code_blocks

from chainrule.cli import main

pytestmark = pytest.mark.docs
PAGE = DOCS / "getting-started" / "cli.md"
CHAINRULE = ".venv/bin/chainrule"


def page_commands() -> tuple[list[str], list[str]]:
    """(install commands, the commands after them), one entry per line of the page's bash blocks."""
    install, commands = [], []
    for block in code_blocks(PAGE):
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


def test_getting_started_word_for_word(tmp_path, monkeypatch, capsys) -> None:
    _, commands = page_commands()
    threads = torch.get_num_threads()
    assert any(c.startswith(f"{CHAINRULE} train") for c in commands)
    # the page runs from the repository folder: it uses recipes/ and tests/data/ from there
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)  # tiny models: a second thread only adds contention
    printed = {}
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == CHAINRULE:
            if argv[1] == "train":
                argv += ["train.max_epochs=1", "train.progress=false"]
            rc = main(argv[1:])
            out, err = capsys.readouterr()
            assert rc == 0, f"{command}\n{err}"
            printed[command] = json.loads(out.strip().splitlines()[-1])
        else:
            r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"{command}\n{r.stderr}"
    header = "asia,tub,smoke,lung,bronc,either,xray,dysp"
    assert Path("my-data.csv").read_text().splitlines()[0] == header
    samples = Path("samples.csv").read_text().splitlines()
    assert samples[0] == header and len(samples) == 101
    assert all(set(row.split(",")) <= {"0", "1"} for row in samples[1:])
    torch.set_num_threads(threads)
    for run in ["runs/my-data", "runs/my-data-wide", "runs/my-data-nade"]:
        assert (Path(run) / "model" / "model.safetensors").is_file(), run
    trained = [v for k, v in printed.items() if " train " in k]
    assert all(m["test"]["n"] == 200 and m["dataset"] == "csv:my-data.csv" for m in trained)
    evaluated = [v for k, v in printed.items() if " eval " in k]
    assert evaluated and evaluated[0]["split"] == "test" and evaluated[0]["n"] == 200
