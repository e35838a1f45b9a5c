"""A mean that stays exact across processes: sum of values / number of values.

Averaging per-process (or per-batch) means is wrong when the parts have different sizes; this
metric keeps a float64 sum and an integer count, both summed over processes when computed.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class ExactMean(Metric):
    """`update(values)` with any number of values; `compute()` = total / count over all processes."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor) -> None:
        values = values.detach()
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.total / self.count
