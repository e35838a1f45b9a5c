"""Maximum-likelihood training on Lightning: loss = mean of -log_prob over minibatches.

`fit(model, dataset, TrainConfig(...), out_dir)` gives a progress bar, checkpoints (last + best,
written atomically and fsynced by `SafeCheckpointIO`), resume, early stopping on validation NLL,
CSV logs and a PNG of the learning curves, and finally writes the best model as safetensors + JSON.
With `devices`/`num_nodes` > 1 it runs Lightning's DDP (gloo on CPU, NCCL on GPU), launched by
Lightning itself, by torchrun or under SLURM (docs/distributed.md); `batch_size` is the global
batch, and a W-process run follows the same minibatches as a 1-process run (chainrule.data.loading).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.imports import _IS_INTERACTIVE
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy, Strategy
from torch.optim.swa_utils import get_ema_multi_avg_fn

from chainrule.checkpoint_io import SafeCheckpointIO, read_checkpoint
from chainrule.data.base import Dataset
from chainrule.data.binarize import binarize
from chainrule.data.loading import VAL_BATCH, SplitsData
from chainrule.data.perturb import check_perturb_rate, perturb
from chainrule.data.text import SequenceDataset
from chainrule.errors import ChainruleError
from chainrule.evaluate import split_condition
from chainrule.mean_metric import ExactMean
from chainrule.models.base import Model
from chainrule.persistence import atomic_write_json, save


@dataclass
class TrainConfig:
    """Hyper-parameters of a maximum-likelihood run (every field is a recipe key under `train`)."""

    batch_size: int = 128  # global: each of W processes takes batch_size / W
    max_epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant", "cosine" (to 0 over max_epochs) or "cosine-time"
    warmup_steps: int = 0  # cosine-time: linear warm-up over this many steps
    grad_clip: float | None = None
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0
    precision: str = "32-true"  # or "bf16-mixed" (autocast matmuls; evaluation stays fp32)
    compile: bool = False  # torch.compile: NADE's block kernels, other models' training objective
    max_minutes: float | None = None  # wall-clock budget for this run (resumes continue it)
    limit_train_batches: float | int = 1.0
    num_workers: int = 0
    devices: int = 1  # processes (CPU) or GPUs per node
    num_nodes: int = 1
    accelerator: str = "cpu"  # "cpu", "gpu" or "auto"
    strategy: str = "auto"  # "auto" (DDP when devices * num_nodes > 1), "ddp", "ddp_spawn", "ddp_fork"
    progress: bool = True
    init_from: str | None = None  # a saved model folder whose parameters start this run (warm start)
    seq_len: int | None = None  # sequence models: tokens per training chunk (default: block size or 128)
    limit_val_batches: float | int = 1.0  # fraction or number of validation batches per epoch
    perturb_rate: float = 0.0  # background models: each training value replaced by a random one w.p. this
    ema_decay: float = 0.0  # > 0: validate and save an exponential moving average of the parameters

    @classmethod
    def keys(cls) -> list[str]:
        """The field names, i.e. the valid keys of a recipe's `train` section."""
        return [f.name for f in fields(cls)]

    def check(self) -> TrainConfig:
        """Refuse values that would fail later or silently (one message naming the key)."""

        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ChainruleError(f"train.{key} must be {what}, got {getattr(self, key)!r}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        need(is_int(self.batch_size) and self.batch_size >= 1, "batch_size", "a positive integer")
        need(is_int(self.max_epochs) and self.max_epochs >= 1, "max_epochs", "a positive integer")
        need(is_num(self.lr) and self.lr >= 0, "lr", "a finite number >= 0")
        need(is_num(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "a finite number >= 0")
        need(
            self.lr_schedule in ("constant", "cosine", "cosine-time"),
            "lr_schedule",
            "'constant', 'cosine' or 'cosine-time'",
        )
        need(
            self.lr_schedule != "cosine-time" or self.max_minutes is not None,
            "lr_schedule",
            "'cosine-time' only with train.max_minutes, its budget",
        )
        need(self.grad_clip is None or is_num(self.grad_clip) and self.grad_clip > 0, "grad_clip", "> 0")
        need(is_int(self.patience) and self.patience >= 0, "patience", "an integer >= 0")
        need(is_int(self.seed) and 0 <= self.seed < 2**32, "seed", "an integer in [0, 2**32)")
        need(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}")
        need(
            self.max_minutes is None or is_num(self.max_minutes) and self.max_minutes > 0,
            "max_minutes",
            "> 0",
        )
        for key in ("limit_train_batches", "limit_val_batches"):
            lim = getattr(self, key)
            need(
                is_int(lim) and lim >= 1 or is_num(lim) and isinstance(lim, float) and 0 < lim <= 1,
                key,
                "a fraction in (0, 1] or a positive number of batches",
            )
        need(is_int(self.num_workers) and self.num_workers >= 0, "num_workers", "an integer >= 0")
        need(is_int(self.devices) and self.devices >= 1, "devices", "a positive integer")
        need(is_int(self.num_nodes) and self.num_nodes >= 1, "num_nodes", "a positive integer")
        need(self.accelerator in ("cpu", "gpu", "cuda", "auto"), "accelerator", "'cpu', 'gpu' or 'auto'")
        need(self.strategy in STRATEGIES, "strategy", f"one of {list(STRATEGIES)}")
        check_perturb_rate(self.perturb_rate, "train.perturb_rate")
        need(
            is_num(self.ema_decay) and 0 <= self.ema_decay < 1,
            "ema_decay",
            "a number in [0, 1) (0: off; 0.999 averages over about the last 1,000 steps)",
        )
        return self


PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "64-true")
#: Lightning's DDP launchers: "popen" re-runs the command once per extra process (the CLI, torchrun
#: and SLURM all work with it); "spawn"/"fork" start workers from this Python process.
STRATEGIES = {"auto": None, "ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork"}


def make_strategy(config: TrainConfig) -> str | Strategy:
    """Lightning's DDP for more than one process (gloo on CPU, NCCL on GPU), else "auto".

    Buffers are not broadcast: chainrule's buffers (MADE masks and degrees) are the same on every
    process by construction, and validation batches may differ in number between processes."""
    world = config.devices * config.num_nodes
    if config.strategy == "auto" and world == 1:
        return "auto"
    start = STRATEGIES[config.strategy] or ("fork" if _IS_INTERACTIVE else "popen")
    return DDPStrategy(start_method=start, forward_sync_buffers=False)


def make_adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where PyTorch supports it: on CPU the unfused update of a large
    model (MADE-8000: 12.5M weights) is memory-bound and costs as much as the matmuls."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class MaximumLikelihood(L.LightningModule):
    """Wraps any chainrule model; logs train/validation NLL in nats, each an exact mean over all
    processes (sum of log-likelihoods / number of examples, in float64)."""

    def __init__(
        self,
        model: Model,
        config: TrainConfig,
        dynamic_binarization: bool = False,
        checkpoint: Path | None = None,
        labels: dict[str, torch.Tensor] | None = None,
        num_values: int = 2,
    ):
        super().__init__()
        self.model = model
        self.num_values = num_values  # values per dimension of the data, for train.perturb_rate
        self.labels = labels  # per split, for class-conditional models: cond = labels[index]
        self.config = config
        self.dynamic_binarization = dynamic_binarization
        self.checkpoint = checkpoint  # where the last good checkpoint lives (named in errors)
        self.train_nll = ExactMean()
        self.val_nll = ExactMean()
        self._compiled_log_prob = None  # built on first use (a compiled function does not pickle)

    def _training_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The model's training objective per example; with `train.compile` and a model without
        its own compiled kernels (all but NADE), through torch.compile."""
        args = (x,) if cond is None else (x, cond)
        if not self.config.compile or self.model.compiles_itself:
            return self.model.training_log_prob(*args)
        if self._compiled_log_prob is None:
            self._compiled_log_prob = compiled_or_eager(self.model.training_log_prob)
        return self._compiled_log_prob(*args)

    def _condition(self, split: str, index: torch.Tensor) -> torch.Tensor | None:
        """Labels of the batch's examples for a class-conditional model, else None."""
        if self.labels is None:
            return None
        return self.labels[split].to(index.device)[index]

    def on_train_epoch_start(self) -> None:
        """Seed the global generator from (seed, epoch, process): models that draw noise while
        training (the VAE) then continue identically after a resume at an epoch boundary, and
        the processes of a distributed run draw different noise."""
        rank = self.trainer.global_rank
        torch.manual_seed((self.config.seed * 1_000_003 + self.current_epoch * 65_537 + rank) % 2**63)

    def training_step(self, batch, batch_idx):
        x, index = batch
        if self.dynamic_binarization:
            x = binarize(x, index, self.config.seed, self.current_epoch)
        if self.config.perturb_rate:  # a background model (Ren et al. 2019): corrupt every batch afresh
            cfg = self.config
            x = perturb(x, index, cfg.perturb_rate, self.num_values, cfg.seed, self.current_epoch)
        self.model.on_train_step(self.global_step)
        nll = -self._training_log_prob(x, self._condition("train", index)).float()  # a bound if intractable
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
        x, index = batch[0], batch[1]
        cond = self._condition("val", index)
        args = (x,) if cond is None else (x, cond)
        self.val_nll.update(-self.model.validation_log_prob(*args).float())

    def on_validation_epoch_end(self):
        nll = self.val_nll.compute().float()  # synced: sum and count over all processes
        self.val_nll.reset()
        self.log("val_nll", nll, prog_bar=True, sync_dist=False)
        self.log("val_bits_per_dim", nll / math.log(2) / self.model.event_shape[0])

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
        opt = make_adam(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        if self.config.lr_schedule == "cosine":
            return {"optimizer": opt, "lr_scheduler": CosineToZero(opt, self.config.max_epochs)}
        if self.config.lr_schedule == "cosine-time":
            budget = 60 * self.config.max_minutes
            sched = CosineOverTime(opt, self.clock.seconds, budget, self.config.warmup_steps)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt


def compiled_or_eager(fn):
    """`torch.compile(fn)`; if compiling fails (no C++ compiler, an unsupported operation), warn
    once and call `fn` itself from then on. chainrule's own errors pass through."""
    compiled = torch.compile(fn, dynamic=False)
    state = {"broken": False}

    def call(*args):
        if not state["broken"]:
            try:
                return compiled(*args)
            except ChainruleError:
                raise
            except Exception as e:  # torch.compile raises many types while building kernels
                state["broken"] = True
                warnings.warn(f"torch.compile failed ({type(e).__name__}); training eagerly", stacklevel=2)
        return fn(*args)

    return call


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
        """Training seconds so far, earlier parts of a resumed run included."""
        return self.before + time.time() - self.start

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            atomic_write_json(self.path, {"seconds": self.seconds()})


def check_batch_limits(
    config: TrainConfig, dataset: Dataset | SequenceDataset, loaders: tuple[Any, Any] | None
) -> None:
    """Refuse a fractional `limit_train_batches`/`limit_val_batches` that selects no batch (which
    Lightning reports as a bare MisconfigurationException), naming the sizes and the least
    fraction that works. `loaders`: a sequence model's (train, val) loaders, else None."""
    world = config.devices * config.num_nodes
    if loaders is None:  # array data: global training batches; this process's validation batches
        n_val = len(dataset.val) // world  # the process with the fewest examples
        sizes = {
            "limit_train_batches": (
                len(dataset.train) // config.batch_size,
                f"the training split has {len(dataset.train):,} examples in batches of"
                f" train.batch_size={config.batch_size}",
            ),
            "limit_val_batches": (
                math.ceil(n_val / VAL_BATCH),
                f"the validation split has {len(dataset.val):,} examples"
                + (f" ({n_val:,} on each of {world} processes)" if world > 1 else "")
                + f", scored in batches of {VAL_BATCH:,}",
            ),
        }
    else:
        train_dl, val_dl = loaders
        sizes = {
            "limit_train_batches": (len(train_dl), "one pass over the training text"),
            "limit_val_batches": (
                len(val_dl),
                f"the validation text of {dataset.val.numel():,} tokens is scored in chunks",
            ),
        }
    for key, (batches, what) in sizes.items():
        limit = getattr(config, key)
        if isinstance(limit, float) and batches > 0 and int(batches * limit) == 0:
            raise ChainruleError(
                f"train.{key}={limit} selects no batch: {what} ({batches:,} batch{'es' * (batches != 1)}),"
                f" and {limit} x {batches:,} < 1; use train.{key}={least_fraction(batches)!r} or more (or an"
                " integer number of batches, such as 1)"
            )


def least_fraction(batches: int) -> float:
    """A short decimal f >= 1 / batches (within 5 %) with int(batches * f) >= 1."""
    for digits in range(1, 12):
        f = math.ceil(10**digits / batches) / 10**digits
        if int(batches * f) >= 1 and f <= 1.05 / batches:
            return f
    return 1.0


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
    """What `fit` returns: the run folder, the saved best model's folder, the best validation NLL
    (nats), the number of epochs run and the training wall time in seconds (across resumes)."""

    out_dir: Path
    model_dir: Path
    best_val_nll: float
    epochs: int
    train_seconds: float
    is_main: bool = True  # False on the other processes of a distributed run (they write nothing)


def fit(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike = "runs/latest",
    *,
    resume: bool = False,
    extra_metadata: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train `model` on `dataset` by maximum likelihood; write checkpoints, logs, curves and the
    best model (`out_dir/model`). With `resume=True`, continue from `out_dir/checkpoints/last.ckpt`.
    `callbacks` are extra Lightning callbacks."""
    config = (config or TrainConfig()).check()
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
    if resume:
        read_checkpoint(last)  # a damaged checkpoint is refused before anything starts
    L.seed_everything(config.seed, workers=True, verbose=False)
    if model.compiles_itself:
        model.set_compiled(bool(config.compile))
    if config.init_from and not resume:
        warm_start(model, config.init_from)
    if len(dataset.train) < config.batch_size:
        raise ChainruleError(
            f"the training split has {len(dataset.train)} examples, fewer than train.batch_size="
            f"{config.batch_size} (incomplete batches are dropped): lower train.batch_size"
        )
    model.train()  # Lightning keeps the mode it finds; an eval-mode model would train wrongly
    if config.perturb_rate and (isinstance(dataset, SequenceDataset) or dataset.num_values < 2):
        kind = "a token stream" if isinstance(dataset, SequenceDataset) else "continuous"
        raise ChainruleError(
            f"train.perturb_rate={config.perturb_rate} needs array data of discrete values (binary or"
            f" K-level); dataset {dataset.name!r} is {kind}"
        )
    if isinstance(dataset, SequenceDataset):  # text or audio: chunks of one long token stream
        from chainrule.sequence_training import sequence_training

        module, train_dl, val_dl = sequence_training(model, dataset, config)
        data = None
    else:
        labels = None
        if model.class_conditional:
            labels = {s: split_condition(model, dataset, s) for s in ("train", "val")}
        module = MaximumLikelihood(
            model,
            config,
            dataset.dynamic_binarization,
            checkpoint=last,
            labels=labels,
            num_values=dataset.num_values,
        )
        data = SplitsData(dataset.train, dataset.val, config.batch_size, config.seed, config.num_workers)
    check_batch_limits(config, dataset, None if data is not None else (train_dl, val_dl))
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_nll", mode="min", save_top_k=1)
    # a separate callback for last.ckpt: a monitored one rewrites "last" only on improving epochs
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False)
    clock = WallClock(out / "train_time.json")
    all_callbacks: list[Callback] = [best, latest, clock, EarlyStopping("val_nll", patience=config.patience)]
    if config.ema_decay:
        all_callbacks.append(ParameterEMA(config.ema_decay))
    module.clock = clock  # read by the cosine-time schedule
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=make_strategy(config),
        plugins=[SafeCheckpointIO()],
        use_distributed_sampler=False,  # chainrule.data.loading shards the data itself
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes else None,
        precision=config.precision,
        gradient_clip_val=config.grad_clip,
        logger=CSVLogger(out, name="logs", version=f"part{len(list((out / 'logs').glob('part*')))}"),
        callbacks=[*all_callbacks, *(callbacks or [])],
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches,
        default_root_dir=out,
        log_every_n_steps=50,
    )
    if trainer.is_global_zero:  # temporary files of a save that was killed midway
        for stale in ckpt_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*precision.*")
        warnings.filterwarnings("ignore", ".*IterableDataset. has .__len__. defined.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        if data is None:
            trainer.fit(module, train_dl, val_dl, ckpt_path=str(last) if resume else None)
        else:
            trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
    if trainer.global_rank != 0:
        return FitResult(out, out / "model", float("nan"), trainer.current_epoch, clock.seconds(), False)
    best_path = Path(best.best_model_path) if best.best_model_path else last
    state = read_checkpoint(best_path)["state_dict"]
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
        **({"columns": dataset.columns} if getattr(dataset, "columns", None) else {}),
        **(extra_metadata or {}),
    }
    model_dir = save(model, out / "model", extra={"training": meta})
    plot_curves(out / "logs", out / "curves.png", title=f"{model.registry_name} on {dataset.name}")
    return FitResult(out, model_dir, meta["best_val_nll"] or float("nan"), trainer.current_epoch, seconds)
