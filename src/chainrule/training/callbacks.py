"""Callbacks of a training run: wall-clock time across resumes, an exponential moving average of
the parameters, and the checkpoint/early-stopping set every run uses."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

from chainrule.persistence import atomic_write_json
from chainrule.training.config import TrainConfig


class WallClock(Callback):
    """Accumulates training wall time across resumes in `train_time.json` (atomic)."""

    def __init__(self, path: Path):
        self.path = path
        self.before = json.loads(path.read_text())["seconds"] if path.is_file() else 0.0
        self.start = time.time()

    def seconds(self) -> float:
        """Training seconds so far, earlier parts of a resumed run included."""
        return self.before + time.time() - self.start

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            atomic_write_json(self.path, {"seconds": self.seconds()})


class ParameterEMA(WeightAveraging):
    """`train.ema_decay`: an exponential moving average (Polyak averaging) of the parameters,
    updated after every optimizer step: a_1 = w_1, a_t = decay * a_(t-1) + (1 - decay) * w_t.

    Lightning's `WeightAveraging` with torch's EMA update. The average lives in a deep copy of the
    plain LightningModule taken at setup, before the first step builds the `train.compile`
    objective, so it never holds compiled code. Only parameters are averaged and swapped: buffers
    (masks, orders, the current member of a MADE ensemble) stay the trained model's, and
    checkpoints store the trained model's buffers. Validation runs on the averaged parameters, and
    every checkpoint's `state_dict` holds them (so best.ckpt, early stopping and the saved model
    use the average, under the usual keys); the raw parameters are kept beside them in
    `current_model_state` and the average's step count in `averaging_state`, from which `--resume`
    continues both."""

    def __init__(self, decay: float) -> None:
        super().__init__(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = decay

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Copy the module as Lightning does; under `precision: 64-true` make the copy float64 now,
        since Lightning converts the trained module only after this hook (else the float32 average
        breaks torch's EMA update and rounds the trained weights at every validation swap)."""
        super().setup(trainer, pl_module, stage)
        if self._average_model is not None and str(trainer.precision).startswith("64"):
            self._average_model.module.double()

    def _pairs(self, pl_module: L.LightningModule) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        assert self._average_model is not None
        return zip(self._average_model.module.parameters(), pl_module.parameters(), strict=True)

    def _swap_models(self, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            for average, current in self._pairs(pl_module):
                kept = average.detach().clone()
                average.copy_(current)
                current.copy_(kept)

    def _copy_average_to_current(self, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            for average, current in self._pairs(pl_module):
                current.copy_(average)

    @contextmanager
    def averaged(self, pl_module: L.LightningModule) -> Iterator[None]:
        """The averaged parameters in `pl_module` for the duration of the block, as validation sees
        them (for a caller's own evaluation in the middle of an epoch); the trained ones after."""
        if self._average_model is None:
            yield
            return
        self._swap_models(pl_module)
        try:
            yield
        finally:
            self._swap_models(pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        current = checkpoint.get("current_model_state")
        if current is not None:  # averaged parameters, the trained model's buffers, the usual keys
            names = {name for name, _ in pl_module.named_parameters(remove_duplicate=False)}
            average = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: average[k] if k in names else v for k, v in current.items()}


def load_raw_weights(checkpoint: dict[str, Any]) -> None:
    """A checkpoint of a run with `train.ema_decay` resumed without it continues from the trained
    (not the averaged) parameters."""
    if "current_model_state" in checkpoint:
        checkpoint["state_dict"] = checkpoint.pop("current_model_state")
        checkpoint.pop("averaging_state", None)


class DistributedBanner(Callback):
    """One line on stderr (rank 0) when a run is distributed: how many processes and which
    backend. Lightning's own setup lines are silenced with its other chatter (trainer.py)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1 and trainer.is_global_zero:
            backend = getattr(trainer.strategy, "process_group_backend", None) or "?"
            print(
                f"distributed: {trainer.world_size} processes on {trainer.num_nodes} node(s),"
                f" backend {backend}",
                file=sys.stderr,
                flush=True,
            )


def run_callbacks(config: TrainConfig, out: Path) -> tuple[ModelCheckpoint, WallClock, list[Callback]]:
    """The callbacks of every run: best.ckpt (lowest val_nll) and last.ckpt in `out/checkpoints`,
    the wall clock, early stopping on val_nll, and the parameter average of `train.ema_decay`.
    Returns (the best-checkpoint callback, the clock, all of them)."""
    ckpt_dir = out / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_nll", mode="min", save_top_k=1)
    # a separate callback for last.ckpt: a monitored one rewrites "last" only on improving epochs
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    clock = WallClock(out / "train_time.json")
    stop = EarlyStopping("val_nll", patience=config.patience)
    callbacks: list[Callback] = [best, latest, clock, stop, DistributedBanner()]
    if config.ema_decay:
        callbacks.append(ParameterEMA(config.ema_decay))
    return best, clock, callbacks
