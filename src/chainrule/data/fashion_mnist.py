"""Fashion-MNIST (Xiao et al. 2017, MIT licence) from the Debian package `dataset-fashion-mnist`.

The 60,000 training images are split into 50,000 train and 10,000 validation images, 1,000 of each
class to validation, chosen by `chainrule.data.splits.stratified_split` with `SPLIT_SEED` (both
listed in that function's seeded order); the official 10,000 test images are the test split, in
file order. 28x28 grey levels 0..255, cached as `fashion-mnist-uint8.npz` after the first read.
"""

from __future__ import annotations

import numpy as np

from chainrule.data.base import Dataset
from chainrule.data.debian import DebianFiles
from chainrule.data.idx import read_idx
from chainrule.data.images import binarization_note, binarized_dataset, cached_npz, eight_bit_dataset
from chainrule.data.splits import stratified_split
from chainrule.errors import ChainruleError

FASHION_MNIST = DebianFiles(
    package="dataset-fashion-mnist",
    version="0.0~git20200523.55506a9-1",
    folder="/usr/share/datasets/fashion-mnist",
    cache_folder="fashion-mnist",
    files=(
        ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
        ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
        ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
        ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
    ),
)
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Seed of the fixed train/validation split of the official training set.
SPLIT_SEED = 0
#: Validation images taken from each class of the official training set.
VAL_PER_CLASS = 1000


def _images_and_labels(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise ChainruleError(
            f"Fashion-MNIST {what}: expected images (N, 28, 28) and N labels, got {images.shape} and"
            f" {labels.shape}"
        )
    if labels.max(initial=0) >= len(CLASSES):
        raise ChainruleError(f"Fashion-MNIST {what}: labels must be 0..9, got {labels.max()}")
    return images.reshape(len(images), -1), labels


def _read_fashion_mnist() -> dict[str, np.ndarray]:
    files = FASHION_MNIST.fetch()
    x, y = _images_and_labels(
        read_idx(files["train-images-idx3-ubyte.gz"]), read_idx(files["train-labels-idx1-ubyte.gz"]), "train"
    )
    x_test, y_test = _images_and_labels(
        read_idx(files["t10k-images-idx3-ubyte.gz"]), read_idx(files["t10k-labels-idx1-ubyte.gz"]), "t10k"
    )
    rows = stratified_split(y, {"val": VAL_PER_CLASS}, SPLIT_SEED)
    return {
        "x_train": x[rows["train"]],
        "y_train": y[rows["train"]],
        "x_val": x[rows["val"]],
        "y_val": y[rows["val"]],
        "x_test": np.array(x_test),
        "y_test": np.array(y_test),
    }


def fashion_mnist_uint8() -> dict[str, np.ndarray]:
    """Images as uint8 (N, 784) and labels per split; cached as .npz after the first read."""
    return cached_npz("fashion-mnist-uint8.npz", _read_fashion_mnist)


def _description(values: str) -> str:
    return (
        f"Fashion-MNIST, 28x28, {values}; 50k train / 10k val from the official 60k training set"
        f" ({VAL_PER_CLASS} per class to val, stratified_split seed {SPLIT_SEED}), the official 10k test;"
        f" labels 0-9: {', '.join(CLASSES)}"
    )


def fashion_mnist() -> Dataset:
    """8-bit Fashion-MNIST: grey levels 0..255 (num_values 256)."""
    return eight_bit_dataset(
        "fashion-mnist", fashion_mnist_uint8(), (28, 28), _description("grey levels 0..255")
    )


def binarized_fashion_mnist() -> Dataset:
    """Fashion-MNIST binarized as binarized-mnist is (for scoring MNIST models out of distribution)."""
    return binarized_dataset(
        "binarized-fashion-mnist", fashion_mnist_uint8(), (28, 28), _description(binarization_note())
    )
