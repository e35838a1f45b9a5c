"""Small synthetic binary data with a known distribution, for tests and quick checks."""

from __future__ import annotations

import torch

from chainrule.data.base import Dataset


def bars(side: int = 4, n: int = 3000, seed: int = 0) -> Dataset:
    """Bars-and-stripes-like images: each image is a random set of full rows or full columns,
    with 5% pixel noise. D = side², so `side=3` gives 9 dimensions (enumerable)."""
    g = torch.Generator().manual_seed(seed)
    horizontal = torch.rand(n, generator=g) < 0.5
    lines = (torch.rand(n, side, generator=g) < 0.5).float()
    imgs = torch.where(
        horizontal[:, None, None],
        lines[:, :, None].expand(n, side, side),
        lines[:, None, :].expand(n, side, side),
    )
    flip = (torch.rand(n, side, side, generator=g) < 0.05).float()
    x = (imgs + flip).remainder(2).reshape(n, side * side)
    a, b = int(0.7 * n), int(0.85 * n)
    return Dataset(
        name=f"bars-{side}",
        train=x[:a],
        val=x[a:b],
        test=x[b:],
        num_values=2,
        image_shape=(side, side),
        description=f"bars and stripes {side}x{side} with 5% flips, seed {seed}",
    )
