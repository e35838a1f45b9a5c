"""A quiet, informative CLI: no third-party tips or deprecation warnings in normal output, plain
progress lines when stderr is not a terminal, and `train.logger` refusing a missing package in one
line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.errors import ChainruleError
from chainrule.progress_lines import ProgressLines, elapsed, metric_text
from chainrule.trainer import check_logger, make_loggers, make_trainer, progress_callback, quiet_lightning
from chainrule.training import TrainConfig

#: What Lightning, torch and setuptools print that a chainrule user has no use for.
NOISE = [
    "Tip:",
    "litlogger",
    "litmodels",
    "GPU available",
    "TPU available",
    "HPU available",
    "was configured so",
    "`Trainer.fit` stopped",
    "Warning",
    "deprecated",
    "Traceback",
    "| Name",  # a model summary table
    "v_num",
]


def test_train_and_eval_print_no_noise_and_plain_progress_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {name: nade, hidden: 8}\ndata: {name: bars-4}\n"
        "train: {batch_size: 16, max_epochs: 2, lr: 0.003, patience: 100}\n"
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "chainrule.cli"]
    r = subprocess.run([*cmd, "train", str(recipe), "--out", str(run)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], r.stderr
    assert "train_nll" in lines[-1] and "val_nll" in lines[-1] and "step" in lines[-1]
    assert len(r.stdout.splitlines()) == 1 and json.loads(r.stdout)["epochs"] == 2
    e = subprocess.run(
        [*cmd, "eval", str(run / "model"), "--data", "bars-4"], capture_output=True, text=True, timeout=300
    )
    assert e.returncode == 0 and e.stderr == "", e.stderr  # no progress bar off a terminal
    for text in (r.stdout + r.stderr, e.stdout):
        for noise in NOISE:
            assert noise not in text, (noise, text)


def test_progress_lines(monkeypatch) -> None:
    assert elapsed(12.34) == "12.3s" and elapsed(245) == "4m05s" and elapsed(7400) == "2h03m"
    text = metric_text({"train_nll_step": 3.0, "train_nll_epoch": 2.5, "val_nll": 2.25, "lr": "x"})
    assert text == "train_nll 2.5  val_nll 2.25"
    assert metric_text({"train_loss_step": 1.5}) == "train_loss 1.5"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert isinstance(progress_callback(True), ProgressLines) and progress_callback(False) is None


def test_progress_lines_in_a_fit(tmp_path: Path) -> None:
    from chainrule.data import load_dataset
    from chainrule.models import NADE
    from chainrule.training import fit

    stream = io.StringIO()
    fit(
        NADE(9, hidden=4),
        load_dataset("bars-3"),
        TrainConfig(max_epochs=2, progress=False),
        tmp_path / "run",
        callbacks=[ProgressLines(every_seconds=0.0, stream=stream)],
    )
    lines = stream.getvalue().splitlines()
    assert any(" batch " in line for line in lines), lines  # every_seconds=0: a line per batch
    assert [line for line in lines if " step " in line][-1].startswith("epoch 2/2  step ")


def test_lightning_info_is_quiet_unless_debugging(monkeypatch) -> None:
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    quiet_lightning()
    assert logging.getLogger("lightning.pytorch").level == logging.WARNING
    monkeypatch.setenv("CHAINRULE_DEBUG", "1")
    quiet_lightning()
    assert logging.getLogger("lightning.pytorch").level == logging.INFO
    monkeypatch.delenv("CHAINRULE_DEBUG")
    quiet_lightning()


def test_logger_choice(tmp_path: Path, monkeypatch) -> None:
    check_logger("csv")
    for bad in ("wandb", ["csv"], None):
        with pytest.raises(ChainruleError, match="train.logger must be one of"):
            TrainConfig(logger=bad).check()
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ChainruleError, match="pip install tensorboard"):
        TrainConfig(logger="tensorboard").check()
    with pytest.raises(ChainruleError, match="pip install mlflow"):
        make_loggers("mlflow", tmp_path)


def test_csv_logger_is_the_default(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, [], max_epochs=1, progress=False)
    assert [type(lg).__name__ for lg in trainer.loggers] == ["CSVLogger"]
    assert make_loggers("csv", None) is False


@pytest.mark.parametrize("kind, cls", [("tensorboard", "TensorBoardLogger"), ("mlflow", "MLFlowLogger")])
def test_extra_logger_beside_csv(tmp_path: Path, kind: str, cls: str) -> None:
    pytest.importorskip(kind)
    loggers = make_loggers(kind, tmp_path, "part0")
    assert [type(lg).__name__ for lg in loggers] == ["CSVLogger", cls]
