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


def digit_images_28(bases: torch.Tensor, n: int, seed: int, chunk: int = 16384):
    """Yield `n` 28x28 uint8 intensity images in chunks: 8x8 digits (values 0..16) upscaled to
    20x20, placed at a random offset (0..8 in each axis) and dimmed by a random factor."""
    import numpy as np

    big = torch.nn.functional.interpolate(bases[:, None].float() / 16, size=(20, 20), mode="bilinear")
    padded = np.zeros((len(bases), 36, 36), np.float32)
    padded[:, 8:28, 8:28] = big[:, 0].clamp(0, 1).numpy()
    rng = np.random.default_rng(seed)
    ar = np.arange(28)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        which = rng.integers(0, len(bases), m)
        sy, sx = rng.integers(0, 9, m), rng.integers(0, 9, m)
        imgs = padded[which[:, None, None], (sy[:, None] + ar)[:, :, None], (sx[:, None] + ar)[:, None, :]]
        imgs *= rng.uniform(0.7, 1.0, m).astype(np.float32)[:, None, None]
        yield np.round(imgs.reshape(m, 784) * 255).astype(np.uint8)


def write_synthetic_digits(
    path, n_train: int, n_val: int = 10_000, n_test: int = 10_000, seed: int = 0, shard_rows: int = 1 << 20
):
    """An on-disk (memory-mapped) dataset of 28x28 images made from the embedded 8x8 digits, for
    testing scale: intensities for dynamic binarization (train), one fixed binarization (val/test).
    2,000,000 training images take 1.57 GB."""
    import numpy as np

    from chainrule.data.arrays import SplitSource, write_array_dataset
    from chainrule.data.binarize import binarize
    from chainrule.data.digits import _digits_arrays

    x, _ = _digits_arrays()
    perm = np.random.default_rng(0).permutation(len(x))  # the digits dataset's own split
    parts = {"train": perm[:1257], "val": perm[1257:1527], "test": perm[1527:]}
    bases = {s: torch.from_numpy(x[i].reshape(-1, 8, 8)) for s, i in parts.items()}
    counts = {"train": n_train, "val": n_val, "test": n_test}

    def fixed(split: str, k: int):
        at = 0
        for c in digit_images_28(bases[split], counts[split], seed + k):
            b = binarize(torch.from_numpy(c).float() / 255, torch.arange(at, at + len(c)), seed + k, 0)
            at += len(c)
            yield b.to(torch.uint8).numpy()

    sources = {
        "train": SplitSource(n_train, 784, digit_images_28(bases["train"], n_train, seed)),
        "val": SplitSource(n_val, 784, fixed("val", 1)),
        "test": SplitSource(n_test, 784, fixed("test", 2)),
    }
    return write_array_dataset(
        path,
        sources,
        name="synthetic-digits-28",
        num_values=2,
        image_shape=[28, 28],
        dynamic_binarization=True,
        shard_rows=shard_rows,
        description=f"{n_train:,}/{n_val:,}/{n_test:,} 28x28 images from the 8x8 digits (seed {seed});"
        " train re-binarized every minibatch, val/test binarized once",
    )
