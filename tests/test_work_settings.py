"""Training and the CLI set up the CPU for the work while they run, and put it back afterwards:
denormal floats flushed to zero (chainrule.denormals: weights decayed into the denormal range made
a deep-rnade's CPU training step 7x slower; the calling thread gets its IEEE behaviour back, which
hypothesis, for one, needs) and freed memory kept for reuse (chainrule.allocator, with glibc:
image models' steps faulted their activations' pages in afresh)."""

from __future__ import annotations

import lightning as L
import torch

from chainrule.allocator import glibc, keeping
from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.denormals import denormals_flushed, flushing
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit


class SeenDuringTraining(L.Callback):
    def __init__(self) -> None:
        self.settings: list[tuple[bool, bool]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.settings.append((flushing(), keeping()))


#: what `keeping` reports inside fit and a CLI command: True with glibc, else nothing to keep
KEEPING = glibc() is not None


def test_fit_flushes_denormals_and_keeps_memory_while_it_trains_then_restores(tmp_path) -> None:
    assert not flushing()
    seen = SeenDuringTraining()
    cfg = TrainConfig(batch_size=64, max_epochs=1, progress=False)
    fit(NADE(9, hidden=4), load_dataset("bars-3"), cfg, tmp_path / "run", callbacks=[seen])
    assert seen.settings and all(s == (True, KEEPING) for s in seen.settings)
    assert not flushing() and not keeping()


def test_a_caller_that_flushes_keeps_flushing(tmp_path) -> None:
    torch.set_flush_denormal(True)
    try:
        with denormals_flushed():
            assert flushing()
        assert flushing()
    finally:
        torch.set_flush_denormal(False)


def test_the_cli_sets_up_a_command_and_restores_the_thread(monkeypatch) -> None:
    from chainrule.cli.common import CommandParser

    seen = []
    parse = CommandParser.parse_args

    def parse_args(self, *args, **kwargs):
        parsed = parse(self, *args, **kwargs)
        if getattr(parsed, "handler", None) is not None:
            parsed.handler = lambda _: seen.append((flushing(), keeping()))
        return parsed

    monkeypatch.setattr(CommandParser, "parse_args", parse_args)
    assert main(["datasets"]) == 0
    assert seen == [(True, KEEPING)] and not flushing() and not keeping()
