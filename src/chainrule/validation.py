"""Input checks shared by all models: shape, finiteness and value range, with clear messages."""

from __future__ import annotations

import math

import torch

from chainrule.errors import ChainruleError


def as_batch(x: torch.Tensor, event_shape: tuple[int, ...], what: str = "x") -> torch.Tensor:
    """Return `x` as a float tensor of shape (B, *event_shape), accepting any reshape-compatible
    trailing shape (e.g. (B, 28, 28) for a 784-dimensional model)."""
    if not isinstance(x, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    size = math.prod(event_shape)
    if x.dim() < 1 or x.shape[0] == 0:
        raise ChainruleError(f"{what} is empty or has no batch dimension (shape {tuple(x.shape)})")
    if math.prod(x.shape[1:]) != size:
        raise ChainruleError(
            f"{what} has shape {tuple(x.shape)}; expected (batch, {', '.join(map(str, event_shape))})"
            f" or any (batch, ...) with {size} values per example"
        )
    return x.reshape(x.shape[0], *event_shape)


def check_finite(x: torch.Tensor, what: str = "x") -> None:
    """Refuse NaN or infinite values, which would silently poison a likelihood."""
    if x.is_floating_point() and not torch.isfinite(x).all():
        n = int((~torch.isfinite(x)).sum())
        raise ChainruleError(f"{what} contains {n} NaN or infinite value(s)")


def check_discrete(x: torch.Tensor, num_values: int, what: str = "x") -> None:
    """Refuse values that are not integers in [0, num_values)."""
    check_finite(x, what)
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    bad = (x < 0) | (x >= num_values)
    if x.is_floating_point() or x.is_complex():
        bad = bad | (x != torch.floor(x))
    if bad.any():
        v = x[bad][0].item()
        kind = "binary (0 or 1)" if num_values == 2 else f"integers in [0, {num_values - 1}]"
        raise ChainruleError(
            f"{what} must be {kind}; found {v!r} ({int(bad.sum())} bad value(s)). "
            "Binarize or quantize the data first."
        )


def check_num_samples(n: object) -> int:
    """A number of samples must be a positive int (not a bool, float or string)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ChainruleError(f"number of samples must be a positive integer, got {n!r}")
    return n
