"""The input checks every classifier shares: feature shapes, infinities and NaN, unknown labels."""

from __future__ import annotations

import torch

from chainrule.errors import ChainruleError


def check_features(
    x: torch.Tensor,
    what: str = "x",
    *,
    num_features: int | None = None,
    allow_nan: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Return `x` as a (N, D) tensor of `dtype`; refuse other shapes, infinities, and NaN unless
    `allow_nan` (NaN then marks a missing feature)."""
    if not isinstance(x, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ChainruleError(f"{what} has shape {tuple(x.shape)}; expected a non-empty (examples, features)")
    if num_features is not None and x.shape[1] != num_features:
        raise ChainruleError(f"{what} has {x.shape[1]} features; the classifier was fitted on {num_features}")
    x = x.to(dtype)
    if torch.isinf(x).any():
        raise ChainruleError(f"{what} contains {int(torch.isinf(x).sum())} infinite value(s)")
    if not allow_nan and torch.isnan(x).any():
        raise ChainruleError(
            f"{what} contains {int(torch.isnan(x).sum())} NaN value(s); this classifier needs complete"
            " features (impute them first, or use Naive Bayes, which marginalises missing features)"
        )
    return x


def check_labels(y: torch.Tensor, n: int, num_classes: int | None = None, what: str = "y") -> torch.Tensor:
    """Return `y` as a long tensor (n,) of class indices 0..num_classes-1."""
    if not isinstance(y, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ChainruleError(f"{what} has shape {tuple(y.shape)}; expected ({n},), one label per example")
    if y.is_floating_point() and (torch.isnan(y).any() or (y != torch.round(y)).any()):
        raise ChainruleError(f"{what} must hold integer class indices 0..K-1")
    y = y.long()
    if (y < 0).any():
        raise ChainruleError(f"{what} holds negative label {int(y.min())}; labels are class indices 0..K-1")
    if num_classes is not None and (y >= num_classes).any():
        raise ChainruleError(
            f"{what} holds unknown label {int(y.max())}; this classifier knows classes 0..{num_classes - 1}"
        )
    return y
