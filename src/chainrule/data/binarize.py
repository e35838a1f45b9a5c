"""Dynamic binarization that depends only on (seed, epoch, example index, pixel).

Each training minibatch of a dynamically binarized dataset is a fresh Bernoulli draw. Drawing it
from a global random stream would make the draw depend on how the data was split across
processes, on data-loader workers and on where a run was resumed; a counter-based hash makes
pixel d of example i in epoch e the same bit whatever the process layout, so a 2-process run
equals a 1-process run and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h * c) mod 2**32 for int64 tensors holding values below 2**32, without int64 overflow."""
    lo = (h & 0xFFFF) * c
    hi = ((h >> 16) * c) & 0xFFFF
    return (lo + (hi << 16)) & MASK32


def hash32(h: torch.Tensor) -> torch.Tensor:
    """Wellons' `lowbias32` integer hash (full avalanche) on int64 tensors of 32-bit values."""
    h = h & MASK32
    h = h ^ (h >> 16)
    h = _mul32(h, 0x7FEB352D)
    h = h ^ (h >> 15)
    h = _mul32(h, 0x846CA68B)
    return h ^ (h >> 16)


def uniform_bits(index: torch.Tensor, dim: int, seed: int, epoch: int) -> torch.Tensor:
    """24-bit uniform integers of shape (len(index), dim), one per (seed, epoch, index, pixel)."""
    index = index.to(torch.int64)
    key = hash32(torch.tensor((seed & MASK32) ^ hash32(torch.tensor(epoch & MASK32)).item()))
    row = hash32(hash32(index ^ key) ^ (index >> 32))
    col = (torch.arange(dim, dtype=torch.int64, device=index.device) * GOLDEN32) & MASK32
    return hash32(row[:, None] ^ col[None, :]) >> 8


def binarize(probs: torch.Tensor, index: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
    """Bernoulli(probs) drawn from `uniform_bits`: rows of `probs` are the examples `index`."""
    flat = probs.reshape(probs.shape[0], -1)
    u = uniform_bits(index.to(flat.device), flat.shape[1], seed, epoch)
    threshold = flat.double() * float(1 << 24)  # exact for p = k/255 and for 0 and 1
    return (u < threshold).to(probs.dtype).reshape(probs.shape)
