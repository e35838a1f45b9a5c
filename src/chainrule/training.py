"""Maximum-likelihood training on Lightning: loss = mean of -log_prob over minibatches.

`fit(model, dataset, TrainConfig(...), out_dir)` gives a progress bar, checkpoints (last + best,
written atomically by Lightning), resume, early stopping on validation NLL, CSV logs and a PNG
of the learning curves, and finally writes the best model as safetensors + JSON.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanMetric

from chainrule.data.base import Dataset
from chainrule.data.text import SequenceDataset
from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.persistence import atomic_write_json, save


@dataclass
class TrainConfig:
    """Hyper-parameters of a maximum-likelihood run (every field is a recipe key under `train`)."""

    batch_size: int = 128
    max_epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant", "cosine" (to 0 over max_epochs) or "cosine-time"
    warmup_steps: int = 0  # cosine-time: linear warm-up over this many steps
    grad_clip: float | None = None
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0
    precision: str = "32-true"  # or "bf16-mixed" (autocast matmuls; evaluation stays fp32)
    compile: bool = False  # fuse NADE block kernels with torch.compile
    max_minutes: float | None = None  # wall-clock budget for this run (resumes continue it)
    limit_train_batches: float | int = 1.0
    num_workers: int = 0
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "cpu"
    progress: bool = True
    init_from: str | None = None  # a saved model folder whose parameters start this run (warm start)
    seq_len: int | None = None  # sequence models: tokens per training chunk (default: block size or 128)
    limit_val_batches: float | int = 1.0  # fraction or number of validation batches per epoch

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def make_adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where PyTorch supports it: on CPU the unfused update of a large
    model (MADE-8000: 12.5M weights) is memory-bound and costs as much as the matmuls."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class MaximumLikelihood(L.LightningModule):
    """Wraps any chainrule model; logs train/validation NLL in nats (validation averaged as
    sum of log-likelihoods / number of examples across all processes)."""

    def __init__(self, model: Model, config: TrainConfig, dynamic_binarization: bool = False):
        super().__init__()
        self.model = model
        self.config = config
        self.dynamic_binarization = dynamic_binarization
        self.val_nll = MeanMetric()

    def _batch(self, batch) -> torch.Tensor:
        x = batch[0]
        if self.dynamic_binarization and self.training:
            x = torch.bernoulli(x)
        return x

    def training_step(self, batch, batch_idx):
        hook = getattr(self.model, "before_train_step", None)
        if hook is not None:
            hook(self.global_step)
        loss = -self.model.log_prob(self._batch(batch)).float().mean()
        if not torch.isfinite(loss):
            raise ChainruleError(
                f"training loss became {loss.item()} at step {self.global_step} (epoch"
                f" {self.current_epoch}); the last good checkpoint is in the run's checkpoints/"
                " folder: lower the learning rate or set train.grad_clip and resume"
            )
        self.log("train_nll", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x = batch[0]
        score = getattr(self.model, "validation_log_prob", self.model.log_prob)
        self.val_nll.update(-score(x).float())

    def on_validation_epoch_end(self):
        nll = self.val_nll.compute()
        self.val_nll.reset()
        self.log("val_nll", nll, prog_bar=True, sync_dist=False)
        self.log("val_bits_per_dim", nll / math.log(2) / self.model.event_shape[0])

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip the gradient norm directly: Lightning's mixed-precision plugin refuses to clip for
        a fused optimizer, although bf16 (unlike fp16) has no gradient scaler to undo first."""
        if self.config.precision.startswith("16"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if gradient_clip_val:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def configure_optimizers(self):
        opt = make_adam(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        if self.config.lr_schedule == "cosine":
            return {"optimizer": opt, "lr_scheduler": CosineToZero(opt, self.config.max_epochs)}
        if self.config.lr_schedule == "cosine-time":
            budget = 60 * self.config.max_minutes
            sched = CosineOverTime(opt, self.clock.seconds, budget, self.config.warmup_steps)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt


class CosineToZero(torch.optim.lr_scheduler.LRScheduler):
    """Cosine decay from the base rate to 0 over `total_epochs`. Only the epoch counter is
    checkpointed, so a run resumed with a different `max_epochs` follows the new schedule."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_epochs: int):
        self.total_epochs = max(int(total_epochs), 1)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        t = min(self.last_epoch, self.total_epochs) / self.total_epochs
        return [base * 0.5 * (1 + math.cos(math.pi * t)) for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = state_dict["last_epoch"]
        self._step_count = state_dict.get("_step_count", self.last_epoch + 1)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr


class CosineOverTime(torch.optim.lr_scheduler.LRScheduler):
    """Per step: linear warm-up over `warmup_steps`, then cosine decay to 0 over a wall-clock
    budget (`seconds()` counts across resumes), so a run capped by `max_minutes` ends at lr 0
    whatever the machine's speed. Runs on machines of other speeds take other step counts."""

    def __init__(self, optimizer, seconds, budget_s: float, warmup_steps: int = 0):
        self.seconds, self.budget_s, self.warmup_steps = seconds, max(budget_s, 1e-9), warmup_steps
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        t = min(self.seconds() / self.budget_s, 1.0)
        w = min(1.0, (self.last_epoch + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return [base * w * 0.5 * (1 + math.cos(math.pi * t)) for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = state_dict["last_epoch"]
        self._step_count = state_dict.get("_step_count", self.last_epoch + 1)


class WallClock(Callback):
    """Accumulates training wall time across resumes in `train_time.json` (atomic)."""

    def __init__(self, path: Path):
        self.path = path
        self.before = json.loads(path.read_text())["seconds"] if path.is_file() else 0.0
        self.start = time.time()

    def seconds(self) -> float:
        return self.before + time.time() - self.start

    def on_train_epoch_end(self, trainer, pl_module):
        atomic_write_json(self.path, {"seconds": self.seconds()})


def warm_start(model: Model, model_dir: str | os.PathLike) -> None:
    """Copy the parameters (not buffers such as MADE's mask degrees) of a saved model into
    `model`; every parameter must exist there with the same shape."""
    from chainrule.persistence import load

    source = load(model_dir)
    params = dict(source.named_parameters())
    for name, p in model.named_parameters():
        if name not in params or params[name].shape != p.shape:
            raise ChainruleError(
                f"train.init_from={model_dir}: parameter {name} is missing or has another shape"
            )
        with torch.no_grad():
            p.copy_(params[name].to(p.dtype))


@dataclass
class FitResult:
    out_dir: Path
    model_dir: Path
    best_val_nll: float
    epochs: int
    train_seconds: float


def fit(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike = "runs/latest",
    *,
    resume: bool = False,
    extra_metadata: dict[str, Any] | None = None,
) -> FitResult:
    """Train `model` on `dataset` by maximum likelihood; write checkpoints, logs, curves and the
    best model (`out_dir/model`). With `resume=True`, continue from `out_dir/checkpoints/last.ckpt`."""
    config = config or TrainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise ChainruleError(f"--resume: no checkpoint at {last}; start without --resume")
    if not resume and last.is_file():
        raise ChainruleError(
            f"{out} already holds a run (checkpoints/last.ckpt); pass --resume to continue it or"
            " choose another output folder"
        )
    if config.lr_schedule not in ("constant", "cosine", "cosine-time"):
        raise ChainruleError("train.lr_schedule must be 'constant', 'cosine' or 'cosine-time'")
    if config.lr_schedule == "cosine-time" and not config.max_minutes:
        raise ChainruleError("train.lr_schedule=cosine-time needs train.max_minutes, its budget")
    L.seed_everything(config.seed, workers=True, verbose=False)
    if hasattr(model, "compiled"):
        model.compiled = bool(config.compile)
    if config.init_from and not resume:
        warm_start(model, config.init_from)
    model.train()  # Lightning keeps the mode it finds; an eval-mode model would train wrongly
    if isinstance(dataset, SequenceDataset):  # text or audio: chunks of one long token stream
        from chainrule.sequence_training import sequence_training

        module, train_dl, val_dl = sequence_training(model, dataset, config)
    else:
        module = MaximumLikelihood(model, config, dataset.dynamic_binarization)
        train_dl = DataLoader(
            TensorDataset(dataset.train),
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=config.num_workers,
        )
        val_dl = DataLoader(TensorDataset(dataset.val), batch_size=1000, num_workers=config.num_workers)
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_nll", mode="min", save_top_k=1)
    # a separate callback for last.ckpt: a monitored one rewrites "last" only on improving epochs
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    clock = WallClock(out / "train_time.json")
    module.clock = clock  # read by the cosine-time schedule
    callbacks: list[Callback] = [best, latest, clock, EarlyStopping("val_nll", patience=config.patience)]
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes else None,
        precision=config.precision,
        gradient_clip_val=config.grad_clip,
        logger=CSVLogger(out, name="logs", version=f"part{len(list((out / 'logs').glob('part*')))}"),
        callbacks=callbacks,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches,
        default_root_dir=out,
        log_every_n_steps=50,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*precision.*")
        warnings.filterwarnings("ignore", ".*IterableDataset. has .__len__. defined.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        trainer.fit(module, train_dl, val_dl, ckpt_path=str(last) if resume else None)
    if trainer.global_rank != 0:
        return FitResult(out, out / "model", float("nan"), trainer.current_epoch, clock.seconds())
    best_path = Path(best.best_model_path) if best.best_model_path else last
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    model.eval()
    from chainrule.report import plot_curves

    seconds = clock.seconds()
    meta = {
        "dataset": dataset.name,
        "train_config": asdict(config),
        "best_val_nll": float(best.best_model_score) if best.best_model_score is not None else None,
        "epochs": trainer.current_epoch,
        "train_seconds": seconds,
        "num_parameters": model.num_parameters(),
        **(extra_metadata or {}),
    }
    model_dir = save(model, out / "model", extra={"training": meta})
    plot_curves(out / "logs", out / "curves.png", title=f"{model.registry_name} on {dataset.name}")
    return FitResult(out, model_dir, meta["best_val_nll"] or float("nan"), trainer.current_epoch, seconds)
