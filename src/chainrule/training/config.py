"""`TrainConfig`: the hyper-parameters of a maximum-likelihood run, and their checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from chainrule.data.perturb import check_perturb_rate
from chainrule.errors import ChainruleError
from chainrule.models.arguments import annotation_check
from chainrule.trainer import STRATEGIES, check_logger

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "64-true")
#: Largest batch_size (16M examples a step; a larger one only fails later, in torch or in memory).
MAX_BATCH_SIZE = 2**24
#: Largest seq_len of a sequence model's training chunks (1M tokens).
MAX_SEQ_LEN = 2**20
#: The optimizers of `train.optimizer`.
OPTIMIZERS = ("adam", "adamw", "sgd")
#: `train.momentum` of an SGD run that does not set it.
SGD_MOMENTUM = 0.9


@dataclass
class TrainConfig:
    """Hyper-parameters of a maximum-likelihood run (every field is a recipe key under `train`)."""

    batch_size: int = 128  # global: each of W processes takes batch_size / W
    max_epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0  # adam, sgd: L2 penalty added to the gradient; adamw: decoupled decay
    optimizer: str = "adam"  # "adam", "adamw" (decoupled weight decay of matrices), or "sgd" (momentum)
    momentum: float | None = None  # sgd: heavy-ball momentum in [0, 1), default 0.9 (0: plain SGD)
    nesterov: bool = False  # sgd: Nesterov's momentum (needs momentum > 0)
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
    logger: str = "csv"  # "csv", or "tensorboard" / "mlflow" as well (their packages installed)

    @classmethod
    def keys(cls) -> list[str]:
        """The field names, i.e. the valid keys of a recipe's `train` section."""
        return [f.name for f in fields(cls)]

    def check(self) -> TrainConfig:
        """Refuse values that would fail later or silently (one message naming the key): the ranges
        of the keys that have one, then every key's type from its annotation (a boolean is only
        true or false, an int never a float, a float finite), (What this machine can do is checked
        where a run starts, by `check_accelerator`: a recipe for a GPU is valid anywhere.)"""

        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ChainruleError(f"train.{key} must be {what}, got {getattr(self, key)!r}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        need(
            is_int(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE,
            "batch_size",
            f"a positive integer at most 2**24 ({MAX_BATCH_SIZE:,})",
        )
        need(is_int(self.max_epochs) and self.max_epochs >= 1, "max_epochs", "a positive integer")
        # lr=0 is allowed: it freezes the weights (a run that only validates); negative never
        need(is_num(self.lr) and self.lr >= 0, "lr", "a finite number >= 0")
        need(is_num(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "a finite number >= 0")
        self._check_optimizer()
        need(
            self.lr_schedule in ("constant", "cosine", "cosine-time"),
            "lr_schedule",
            "'constant', 'cosine' or 'cosine-time'",
        )
        if self.lr_schedule == "cosine-time" and self.max_minutes is None:
            raise ChainruleError(
                "train.lr_schedule=cosine-time needs train.max_minutes, the time budget over which"
                " the learning rate decays"
            )
        need(is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", "an integer >= 0")
        need(self.grad_clip is None or is_num(self.grad_clip) and self.grad_clip > 0, "grad_clip", "> 0")
        need(is_int(self.patience) and self.patience >= 0, "patience", "an integer >= 0")
        need(is_int(self.seed) and 0 <= self.seed < 2**32, "seed", "an integer in [0, 2**32) (NumPy's range)")
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
        need(
            isinstance(self.strategy, str) and self.strategy in STRATEGIES,
            "strategy",
            f"one of {list(STRATEGIES)}",
        )
        check_perturb_rate(self.perturb_rate, "train.perturb_rate")
        need(
            is_num(self.ema_decay) and 0 <= self.ema_decay < 1,
            "ema_decay",
            "a number in [0, 1) (0: off; 0.999 averages over about the last 1,000 steps)",
        )
        check_logger(self.logger)
        need(
            self.seq_len is None or is_int(self.seq_len) and 1 <= self.seq_len <= MAX_SEQ_LEN,
            "seq_len",
            f"a positive integer at most 2**20 ({MAX_SEQ_LEN:,}) tokens",
        )
        self._check_init_from()
        for f in fields(self):
            typed = annotation_check(f.type)
            if typed is not None:
                need(any(t(getattr(self, f.name)) for t in typed[0]), f.name, typed[1])
        return self

    @property
    def sgd_momentum(self) -> float:
        """The momentum of an SGD run: `momentum`, or 0.9 where the recipe leaves it out."""
        return SGD_MOMENTUM if self.momentum is None else float(self.momentum)

    def _check_optimizer(self) -> None:
        """`optimizer` is a known one; `momentum` and `nesterov` belong to SGD, momentum in [0, 1),
        and Nesterov's variant needs a momentum to look ahead with."""
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ChainruleError(
                f"train.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        m = self.momentum
        if m is not None and not (
            isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m) and 0 <= m < 1
        ):
            raise ChainruleError(
                f"train.momentum must be a number in [0, 1) (0.9 averages over about the last 10 steps),"
                f" got {m!r}"
            )
        if not isinstance(self.nesterov, bool):
            raise ChainruleError(f"train.nesterov must be true or false, got {self.nesterov!r}")
        if self.optimizer != "sgd" and (m is not None or self.nesterov):
            key = "momentum" if m is not None else "nesterov"
            raise ChainruleError(
                f"train.{key} applies to train.optimizer=sgd only (Adam keeps its own moving"
                f" averages); this run's optimizer is {self.optimizer!r}"
            )
        if self.nesterov and self.sgd_momentum == 0:
            raise ChainruleError(
                "train.nesterov=true needs train.momentum > 0 (Nesterov's variant looks ahead along the"
                " momentum), got train.momentum=0"
            )

    def _check_init_from(self) -> None:
        """A warm start's model folder must exist and hold a saved model (checked here, before a
        run claims its folder or loads data, not when training starts)."""
        if self.init_from is None:
            return
        if not isinstance(self.init_from, str) or not self.init_from.strip():
            raise ChainruleError(f"train.init_from must be a saved model folder, got {self.init_from!r}")
        folder = Path(self.init_from).expanduser()
        if not folder.is_dir():
            raise ChainruleError(f"train.init_from={self.init_from}: no such model folder")
        if not (folder / "config.json").is_file():
            raise ChainruleError(
                f"train.init_from={self.init_from}: the folder holds no config.json, so it is not a"
                " saved model folder"
            )


def check_accelerator(accelerator: str, devices: int) -> None:
    """Refuse a GPU run where torch sees no (or too few) CUDA devices, before Lightning does so
    with a bare exception."""
    if accelerator not in ("gpu", "cuda"):
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        raise ChainruleError(
            f"train.accelerator={accelerator}: no CUDA GPU is available on this machine (torch"
            f" {torch.__version__}); use train.accelerator=cpu or auto"
        )
    if devices > available:
        raise ChainruleError(
            f"train.devices={devices} GPUs asked for, but this machine has {available}; lower train.devices"
        )
