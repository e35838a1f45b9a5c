"""Masked layers: masks are buffers applied functionally, weights are never edited in place."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    """`y = x (W * M)^T + b` with a fixed 0/1 mask `M` of the weight's shape."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        # derived from the model config, so not saved: files hold only what training learned
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the mask buffer by a new tensor (never edited in place, so graphs built with
        the old mask stay valid; the weight itself is never touched)."""
        self.mask = mask.to(device=self.weight.device, dtype=self.weight.dtype)

    def masked_weight(self) -> torch.Tensor:
        """The weight times the mask: the matrix the layer actually applies."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


def strictly_lower_mask(n: int) -> torch.Tensor:
    """Mask with M[i, j] = 1 iff j < i: output i sees only earlier inputs."""
    return torch.ones(n, n).tril(-1)


def init_uniform_(t: torch.Tensor, fan_in: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot-like uniform init scaled by fan-in, used where nn.Linear's default is not reachable."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


def exclusive_cumsum(t: torch.Tensor) -> torch.Tensor:
    """Prefix sums along dim 1 that exclude the current entry: out[:, i] = sum_{j<i} t[:, j].

    Computed from a shifted copy rather than as cumsum(t) - t, so out[:, i] is exactly
    independent of t[:, i] (no rounding leak, which the dependency tests would catch)."""
    shifted = torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1]], dim=1)
    return torch.cumsum(shifted, dim=1)
