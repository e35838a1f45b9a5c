"""Hyper-parameters of a neural classifier's training run (kept apart from the Lightning code, so that
importing chainrule.classifiers does not import Lightning)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chainrule.errors import ChainruleError


@dataclass
class ClassifierTrainConfig:
    """Hyper-parameters of a classifier run (each is a `chainrule classifier train` flag)."""

    batch_size: int = 128
    max_epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 2  # epochs without a better validation accuracy before stopping
    seed: int = 0
    max_minutes: float | None = None  # wall-clock budget
    progress: bool = True
    accelerator: str = "cpu"  # "cpu", "gpu" or "auto"

    def check(self) -> ClassifierTrainConfig:
        """Refuse values that would fail later, with a message naming the setting."""

        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ChainruleError(f"{key} must be {what}, got {getattr(self, key)!r}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        need(is_int(self.batch_size) and self.batch_size >= 1, "batch_size", "a positive integer")
        need(is_int(self.max_epochs) and self.max_epochs >= 1, "max_epochs", "a positive integer")
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0, "lr", "> 0")
        need(self.weight_decay >= 0, "weight_decay", ">= 0")
        need(is_int(self.patience) and self.patience >= 0, "patience", "an integer >= 0")
        need(is_int(self.seed) and 0 <= self.seed < 2**32, "seed", "an integer in [0, 2**32)")
        need(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "> 0")
        need(self.accelerator in ("cpu", "gpu", "cuda", "auto"), "accelerator", "'cpu', 'gpu' or 'auto'")
        return self
