"""Input perturbation for background models (Ren et al. 2019): each value replaced by a random one.

A background model is trained on corrupted copies of the training data so that it learns the
population-level statistics (how many pixels are on, smooth regions) but not the semantics; the
likelihood ratio log p(x) - log p_background(x) then cancels what the two share. With rate μ each
dimension is replaced, independently, by a uniform random value: a fair coin for binary data, a
uniform level 0..K-1 for K-level data.

Like dynamic binarization (`chainrule.data.binarize`), the draw depends only on (seed, epoch,
example index, dimension) through a counter-based hash, so it is fresh every epoch, the same
whatever the process layout, and the same after a resume.
"""

from __future__ import annotations

import math

import torch

from chainrule.data.binarize import uniform_bits
from chainrule.errors import ChainruleError

#: Mixed into the seed so the perturbation stream is not the binarization stream of the same run.
PERTURB_SALT = 0x5EED_0F0B


def check_perturb_rate(rate: object, what: str = "perturb rate") -> float:
    """`rate` as a float in [0, 1), or a ChainruleError naming `what`."""
    ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate)
    if not ok or not 0.0 <= float(rate) < 1.0:
        raise ChainruleError(
            f"{what} must be a number in [0, 1) (the probability that each value is replaced by a random"
            f" one; 0 = off), got {rate!r}"
        )
    return float(rate)


def perturb(
    x: torch.Tensor, index: torch.Tensor, rate: float, num_values: int, seed: int, epoch: int
) -> torch.Tensor:
    """Replace each entry of `x` (rows = examples `index`, values 0..num_values-1) with probability
    `rate` by a uniform random value in 0..num_values-1; the rest are kept."""
    rate = check_perturb_rate(rate)
    if not isinstance(num_values, int) or num_values < 2:
        raise ChainruleError(
            "perturbation needs discrete data (2 or more values per dimension),"
            f" got num_values={num_values!r}"
        )
    if rate == 0.0:
        return x
    flat = x.reshape(x.shape[0], -1)
    d = flat.shape[1]
    u = uniform_bits(index.to(flat.device), 2 * d, (seed ^ PERTURB_SALT) & 0xFFFFFFFF, epoch)
    replace = u[:, :d].double() < rate * float(1 << 24)
    level = (u[:, d:] * num_values) >> 24  # uniform in 0..num_values-1 (24-bit resolution)
    out = torch.where(replace, level.to(flat.dtype), flat)
    return out.reshape(x.shape)
