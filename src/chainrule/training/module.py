"""`MaximumLikelihood`: the one LightningModule of every density-model run, whatever the data.

Loss = mean of the objective's negative log-likelihoods (objectives.py); train and validation NLL
are logged in nats, each an exact mean over all processes (sum / count, in float64), so the
finite-loss check, the logging and the metric names are the same for arrays and token streams.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from chainrule.checkpoint_io import read_checkpoint
from chainrule.errors import ChainruleError
from chainrule.mean_metric import ExactMean
from chainrule.models.base import Model
from chainrule.training.callbacks import WallClock, load_raw_weights
from chainrule.training.config import TrainConfig
from chainrule.training.objectives import ArrayObjective, SequenceObjective
from chainrule.training.schedules import apply_hyperparameters, configure_optimizers


class MaximumLikelihood(L.LightningModule):
    """Wraps any chainrule model and the objective for its data (an `ArrayObjective` by default);
    `checkpoint` is where the last good checkpoint lives (named in errors)."""

    def __init__(
        self,
        model: Model,
        config: TrainConfig,
        objective: ArrayObjective | SequenceObjective | None = None,
        checkpoint: Path | None = None,
    ):
        super().__init__()
        self.model = model
        self.config = config
        self.objective = objective or ArrayObjective(model, config)
        self.checkpoint = checkpoint
        self.train_nll = ExactMean()
        self.val_nll = ExactMean()
        self.clock: WallClock | None = None  # set by `fit`: the run's training time (cosine-time)

    def on_train_start(self) -> None:
        """After a resume's optimizer state is loaded: this run's lr, weight decay and momentum."""
        scheduled = bool(self.trainer.lr_scheduler_configs)
        for optimizer in self.trainer.optimizers:
            apply_hyperparameters(optimizer, self.config, scheduled)

    def on_train_epoch_start(self) -> None:
        """Seed the global generator from (seed, epoch, process): models that draw noise while
        training (the VAE) then continue identically after a resume at an epoch boundary, and
        the processes of a distributed run draw different noise."""
        rank = self.trainer.global_rank
        torch.manual_seed((self.config.seed * 1_000_003 + self.current_epoch * 65_537 + rank) % 2**63)

    def training_step(self, batch, batch_idx):
        self.model.on_train_step(self.global_step)
        nll = self.objective.train_nll(batch, self.current_epoch)
        loss = nll.mean()
        finite = bool(torch.isfinite(loss))
        if self.trainer.world_size > 1:  # every process stops together, none hangs in all-reduce
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            raise ChainruleError(self._non_finite_message(loss))
        self.train_nll.update(nll)
        self.log("train_nll_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.log("train_nll_epoch", self.train_nll, on_step=False, on_epoch=True)
        return loss

    def _non_finite_message(self, loss: torch.Tensor) -> str:
        where = f"step {self.global_step} (epoch {self.current_epoch})"
        value = loss.item() if loss.numel() == 1 else loss
        head = (
            f"training loss became {value} at {where}"
            if not torch.isfinite(loss)
            else (f"training loss became non-finite on another process at {where}")
        )
        last = self.checkpoint
        if last is not None and last.is_file():
            try:
                ck = read_checkpoint(last)
                good = f"{last} (end of epoch {ck['epoch']}, step {ck['global_step']})"
            except ChainruleError:
                good = f"{last} (unreadable)"
            tail = f"the last good checkpoint is {good}: lower train.lr or set train.grad_clip and resume"
        else:
            tail = "no checkpoint was written yet (the first comes at the end of epoch 0): lower train.lr"
            tail += " or set train.grad_clip and start again"
        return f"{head}; {tail}"

    def validation_step(self, batch, batch_idx):
        self.val_nll.update(self.objective.val_nll(batch))

    def on_validation_epoch_end(self):
        nll = self.val_nll.compute().float()  # synced: sum and count over all processes
        self.val_nll.reset()
        self.objective.end_validation()
        self.log("val_nll", nll, prog_bar=True, sync_dist=False, batch_size=1)
        self.log(self.objective.bits_name, nll / math.log(2) / self.objective.dim, batch_size=1)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resumed without `train.ema_decay`: continue an averaged run's trained parameters."""
        if not self.config.ema_decay:
            load_raw_weights(checkpoint)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip the gradient norm directly: Lightning's mixed-precision plugin refuses to clip for
        a fused optimizer, although bf16 (unlike fp16) has no gradient scaler to undo first."""
        if self.config.precision.startswith("16"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if gradient_clip_val:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def configure_optimizers(self):
        seconds = self.clock.seconds if self.clock is not None else time.time
        return configure_optimizers(self.model.parameters(), self.config, seconds)
