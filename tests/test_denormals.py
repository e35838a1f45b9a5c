"""Training and the CLI flush denormal floats to zero while they work (chainrule.denormals):
weights decayed into the denormal range made a deep-rnade's CPU training step 7x slower. The
calling thread gets its IEEE behaviour back afterwards (hypothesis, for one, refuses to run
without it)."""

from __future__ import annotations

import lightning as L
import torch

from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.denormals import denormals_flushed, flushing
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit


class SeenDuringTraining(L.Callback):
    def __init__(self) -> None:
        self.flushing: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.flushing.append(flushing())


def test_fit_flushes_denormals_while_it_trains_and_restores_the_thread(tmp_path) -> None:
    assert not flushing()
    seen = SeenDuringTraining()
    cfg = TrainConfig(batch_size=64, max_epochs=1, progress=False)
    fit(NADE(9, hidden=4), load_dataset("bars-3"), cfg, tmp_path / "run", callbacks=[seen])
    assert seen.flushing and all(seen.flushing)
    assert not flushing()


def test_a_caller_that_flushes_keeps_flushing(tmp_path) -> None:
    torch.set_flush_denormal(True)
    try:
        with denormals_flushed():
            assert flushing()
        assert flushing()
    finally:
        torch.set_flush_denormal(False)


def test_the_cli_flushes_during_a_command_and_restores_the_thread(monkeypatch) -> None:
    from chainrule.cli.common import CommandParser

    seen = []
    parse = CommandParser.parse_args

    def parse_args(self, *args, **kwargs):
        parsed = parse(self, *args, **kwargs)
        if getattr(parsed, "handler", None) is not None:
            parsed.handler = lambda _: seen.append(flushing())
        return parsed

    monkeypatch.setattr(CommandParser, "parse_args", parse_args)
    assert main(["datasets"]) == 0
    assert seen == [True] and not flushing()
