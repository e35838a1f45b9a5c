"""8x8 handwritten digits (scikit-learn's copy of the UCI set, BSD-3), embedded in the package.

1,797 images with 17 intensity levels (0..16), split 1,257 / 270 / 270 by a fixed shuffle.
The binary view thresholds at 8 (value >= 8 -> 1).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from chainrule.data.base import Dataset

SPLIT_SEED = 0


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    with (
        resources.files("chainrule.data").joinpath("files/digits.npz").open("rb") as f,
        np.load(f) as z,
    ):
        return z["images"].astype(np.int64), z["labels"].astype(np.int64)


def digits(levels: int) -> Dataset:
    """`levels` = 2 (binary) or 17 (raw intensities)."""
    x, y = _digits_arrays()
    if levels == 2:
        x = (x >= 8).astype(np.int64)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    idx = {"train": perm[:1257], "val": perm[1257:1527], "test": perm[1527:]}
    t = {s: torch.from_numpy(x[i]).float() for s, i in idx.items()}
    return Dataset(
        name="digits" if levels == 2 else "digits-17",
        train=t["train"],
        val=t["val"],
        test=t["test"],
        num_values=levels,
        image_shape=(8, 8),
        labels={s: torch.from_numpy(y[i]) for s, i in idx.items()},
        description=f"8x8 digits, {levels} levels, split 1257/270/270 (shuffle seed {SPLIT_SEED})",
    )
