"""Supervised training of a neural classifier on Lightning: cross-entropy, Adam, validation accuracy,
early stopping, the best epoch's weights restored.

The density-model trainer (`chainrule.training`) maximises log p(x); this one maximises
log p(y | x) of a network that maps (N, D) inputs to (N, K) logits. Both run on `lightning.Trainer`
built by the same `chainrule.trainer.make_trainer` (progress bar, seeding, CSV logs, safe
checkpoints), and Lightning's `ModelCheckpoint` keeps the best epoch, so none of the loop is
written by hand.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from chainrule.checkpoint_io import read_checkpoint
from chainrule.classifiers.train_config import ClassifierTrainConfig
from chainrule.errors import ChainruleError
from chainrule.trainer import make_trainer, quiet_fit, seed_run


class ClassifierModule(L.LightningModule):
    """Cross-entropy on `net(x)` logits; logs train loss, validation loss and accuracy."""

    def __init__(self, net: nn.Module, config: ClassifierTrainConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self._val: list[torch.Tensor] = []
        self.train_sum, self.train_count = 0.0, 0

    def on_train_epoch_start(self) -> None:
        self.train_sum, self.train_count = 0.0, 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        if not torch.isfinite(loss):
            raise ChainruleError(f"training loss became {loss.item()} at step {self.global_step}: lower --lr")
        self.train_sum += float(loss.detach()) * len(y)
        self.train_count += len(y)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(1) == y).sum()
        self._val.append(
            torch.stack([loss.double(), correct.double(), torch.tensor(len(y), dtype=torch.float64)])
        )

    def on_validation_epoch_end(self):
        loss, correct, n = torch.stack(self._val).sum(0)
        self._val.clear()
        self.log("val_loss", (loss / n).float(), prog_bar=False)
        self.log("val_acc", (correct / n).float(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )


class History(Callback):
    """One row per validation: epoch, val_acc, val_loss and the epoch's mean training loss."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {
            "epoch": trainer.current_epoch,
            "val_acc": float(metrics["val_acc"]),
            "val_loss": float(metrics["val_loss"]),
        }
        if pl_module.train_count:  # validation runs at the end of each training epoch
            row["train_loss"] = pl_module.train_sum / pl_module.train_count
        self.rows.append(row)


@dataclass
class ClassifierFitResult:
    """Best validation accuracy, its epoch, epochs run, seconds, and the per-epoch history."""

    best_val_acc: float
    best_epoch: int
    epochs: int
    train_seconds: float
    history: list[dict[str, float]]
    config: dict[str, Any]


def fit_classifier(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: ClassifierTrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
) -> ClassifierFitResult:
    """Train `net` (inputs already scaled as it expects) with Adam on cross-entropy; early-stop on
    validation accuracy and load the best epoch's weights. With `out_dir`, CSV logs go to
    `out_dir/logs`. Leaves `net` in eval mode."""
    config = (config or ClassifierTrainConfig()).check()
    if len(x) < config.batch_size:
        raise ChainruleError(f"{len(x)} training examples, fewer than batch_size={config.batch_size}")
    seed_run(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    train_dl = DataLoader(TensorDataset(x, y), config.batch_size, shuffle=True, generator=g, drop_last=True)
    val_dl = DataLoader(TensorDataset(x_val, y_val), 1000)
    history = History()
    module = ClassifierModule(net, config)
    net.train()
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="chainrule-classifier-") as ckpt_dir:
        # the best epoch by validation accuracy (ties keep the earlier one), restored at the end
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_acc", mode="max", save_top_k=1)
        trainer = make_trainer(
            Path(out_dir) if out_dir is not None else None,
            [best, history, EarlyStopping("val_acc", mode="max", patience=config.patience)],
            max_epochs=config.max_epochs,
            max_minutes=config.max_minutes,
            progress=config.progress,
            accelerator=config.accelerator,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(50, len(train_dl))),
        )
        with quiet_fit():
            trainer.fit(module, train_dl, val_dl)
        seconds = time.time() - start
        best_acc, best_epoch = -1.0, -1
        if best.best_model_path:
            ckpt = read_checkpoint(best.best_model_path)
            module.load_state_dict(ckpt["state_dict"])
            best_acc, best_epoch = float(best.best_model_score), int(ckpt["epoch"])
    net.cpu().eval()
    return ClassifierFitResult(
        best_acc, best_epoch, trainer.current_epoch, seconds, history.rows, asdict(config)
    )
