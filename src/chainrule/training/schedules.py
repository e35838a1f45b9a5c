"""The optimizer (Adam, AdamW, or SGD with momentum) and its learning-rate schedules: constant, cosine to
0 over the epochs, or cosine to 0 over a wall-clock budget with a linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from chainrule.training.config import TrainConfig


def _fused_if_possible(
    optimizer: type[torch.optim.Optimizer], params: list, **kw: Any
) -> torch.optim.Optimizer:
    """`optimizer(params, **kw)` with its fused kernel, or unfused where PyTorch has none for these
    parameters (their device or dtype)."""
    try:
        return optimizer(params, **kw, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return optimizer(params, **kw)


def make_adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where PyTorch supports it: on CPU the unfused update of a large
    model (MADE-8000: 12.5M weights) is memory-bound and costs as much as the matmuls."""
    return _fused_if_possible(torch.optim.Adam, list(params), lr=lr, weight_decay=weight_decay)


def make_adamw(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019): each step shrinks the weights by lr * weight_decay apart
    from the Adam update, instead of adding weight_decay * w to the gradient, where Adam's scaling
    would undo it. Only matrices and embeddings (parameters of 2 or more dimensions) decay; biases
    and normalisation gains keep weight_decay 0 (their group is marked `decays: False`). Fused
    where PyTorch supports it."""
    params = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "decays": True},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "decays": False},
    ]
    return _fused_if_possible(torch.optim.AdamW, [g for g in groups if g["params"]], lr=lr)


def make_sgd(
    params, lr: float, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """SGD with heavy-ball (or Nesterov) momentum, as PyTorch defines it: with g the minibatch
    gradient plus `weight_decay` * w, the velocity is v <- momentum * v + g (v = g at the first step)
    and the step is w <- w - lr * v (Nesterov: w <- w - lr * (g + momentum * v))."""
    kw = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
    return _fused_if_possible(torch.optim.SGD, list(params), **kw)


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names, with its learning rate, weight decay and momentum."""
    if config.optimizer == "sgd":
        return make_sgd(params, config.lr, config.sgd_momentum, config.nesterov, config.weight_decay)
    if config.optimizer == "adamw":
        return make_adamw(params, lr=config.lr, weight_decay=config.weight_decay)
    return make_adam(params, lr=config.lr, weight_decay=config.weight_decay)


def apply_hyperparameters(optimizer: torch.optim.Optimizer, config: TrainConfig, scheduled: bool) -> None:
    """Set the optimizer's weight decay (and SGD's momentum and Nesterov switch) to `config`'s, and
    its learning rate too unless a schedule (`scheduled`) sets it. Needed after a resume: loading a
    checkpoint's optimizer state restores the hyper-parameters it was saved with, and these keys
    may change on resume (a lower lr is the way out of a diverged run)."""
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay if group.get("decays", True) else 0.0
        if not scheduled:
            group["lr"] = config.lr
        if config.optimizer == "sgd":
            group["momentum"], group["nesterov"] = config.sgd_momentum, config.nesterov


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


def configure_optimizers(params, config: TrainConfig, seconds: Callable[[], float]) -> Any:
    """The optimizer `config.optimizer` names and the schedule `config.lr_schedule` names, as
    Lightning's `configure_optimizers` returns them; `seconds()` is the run's training time so far
    (the cosine-time schedule)."""
    opt = make_optimizer(params, config)
    if config.lr_schedule == "cosine":
        return {"optimizer": opt, "lr_scheduler": CosineToZero(opt, config.max_epochs)}
    if config.lr_schedule == "cosine-time":
        sched = CosineOverTime(opt, seconds, 60 * config.max_minutes, config.warmup_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    return opt
