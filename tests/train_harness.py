"""A small, fully deterministic training run that tests kill, break or resume from outside.

`python -m tests.train_harness OUT [--kill-at-step K | --kill-in-save N] [--resume]` trains
`setup()` into OUT. `--kill-at-step K` SIGKILLs the process when global step K starts;
`--kill-in-save N` SIGKILLs it in the middle of the N-th checkpoint write (after the temporary
file is written, before it is renamed into place); `--ema-decay D` sets train.ema_decay. The
data are dynamically binarized, so a resumed run equals an uninterrupted one only if the
binarization does not depend on the process's history.
"""

from __future__ import annotations

import argparse
import os
import signal
from dataclasses import replace
from pathlib import Path

import lightning as L
import torch

from chainrule.data import load_dataset
from chainrule.data.base import Dataset
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit

CONFIG = TrainConfig(batch_size=32, max_epochs=4, lr=0.01, progress=False, patience=100, seed=3)
STEPS_PER_EPOCH = 1257 // 32


def dynamic_digits() -> Dataset:
    """The 8x8 digits as intensities (0..16 -> /16) re-binarized every minibatch."""
    d = load_dataset("digits-17")
    g = torch.Generator().manual_seed(0)
    return Dataset(
        name="digits-dynamic",
        train=d.train / 16,
        val=torch.bernoulli(d.val / 16, generator=g),
        test=torch.bernoulli(d.test / 16, generator=g),
        num_values=2,
        image_shape=(8, 8),
        dynamic_binarization=True,
    )


def setup(ema_decay: float = 0.0) -> tuple[NADE, Dataset, TrainConfig]:
    torch.manual_seed(CONFIG.seed)
    return NADE(64, hidden=16), dynamic_digits(), replace(CONFIG, ema_decay=ema_decay)


class KillAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_in_save(n: int) -> None:
    """SIGKILL the process inside the n-th checkpoint write, between fsync and rename."""
    import chainrule.persistence as persistence

    real_replace = persistence.os.replace
    seen = {"count": 0}

    def replace(src, dst):
        if str(dst).endswith(".ckpt"):
            seen["count"] += 1
            if seen["count"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    persistence.os.replace = replace


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--kill-at-step", type=int)
    p.add_argument("--kill-in-save", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ema-decay", type=float, default=0.0)
    args = p.parse_args()
    callbacks = [KillAtStep(args.kill_at_step)] if args.kill_at_step is not None else []
    if args.kill_in_save is not None:
        kill_in_save(args.kill_in_save)
    model, data, config = setup(args.ema_decay)
    fit(model, data, config, args.out, resume=args.resume, callbacks=callbacks)


if __name__ == "__main__":
    main()
