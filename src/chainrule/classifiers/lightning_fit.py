"""Supervised training of a neural classifier on Lightning: cross-entropy, Adam, validation accuracy,
early stopping, the best epoch's weights kept.

The density-model trainer (`chainrule.training`) maximises log p(x); this one maximises
log p(y | x) of a network that maps (N, D) inputs to (N, K) logits. Both run on `lightning.Trainer`
(progress bar, seeding, CSV logs), so none of the loop is written by hand.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from chainrule.classifiers.train_config import ClassifierTrainConfig
from chainrule.errors import ChainruleError


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


class KeepBest(Callback):
    """Copies the network's weights whenever validation accuracy improves (ties keep the earlier
    epoch), so the returned classifier is the best epoch's, not the last one's."""

    def __init__(self) -> None:
        self.best = -1.0
        self.state: dict[str, torch.Tensor] | None = None
        self.best_epoch = -1
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        acc = float(metrics["val_acc"])
        row = {"epoch": trainer.current_epoch, "val_acc": acc, "val_loss": float(metrics["val_loss"])}
        if pl_module.train_count:  # validation runs at the end of each training epoch
            row["train_loss"] = pl_module.train_sum / pl_module.train_count
        self.history.append(row)
        if acc > self.best:
            self.best, self.best_epoch = acc, trainer.current_epoch
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in pl_module.net.state_dict().items()})


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
    L.seed_everything(config.seed, workers=True, verbose=False)
    g = torch.Generator().manual_seed(config.seed)
    train_dl = DataLoader(TensorDataset(x, y), config.batch_size, shuffle=True, generator=g, drop_last=True)
    val_dl = DataLoader(TensorDataset(x_val, y_val), 1000)
    keep = KeepBest()
    logger = CSVLogger(Path(out_dir), name="logs", version="") if out_dir is not None else False
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=1,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes else None,
        callbacks=[keep, EarlyStopping("val_acc", mode="max", patience=config.patience)],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, len(train_dl))),
    )
    module = ClassifierModule(net, config)
    net.train()
    start = time.time()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(module, train_dl, val_dl)
    seconds = time.time() - start
    if keep.state is not None:
        net.load_state_dict(keep.state)
    net.cpu().eval()
    return ClassifierFitResult(
        keep.best, keep.best_epoch, trainer.current_epoch, seconds, keep.history, asdict(config)
    )
