"""Animal silhouettes ("Animal-MNIST", MIT licence) from the `animal-mnist==0.4` wheel.

10,000 white-on-black 28x28 silhouettes, 1,000 of each of 10 animals, stored sorted by class as two
gzip'd numpy pickles (read with `NumpyOnlyUnpickler`; the package itself is never installed, it
depends on tensorflow). Split 8,000 / 1,000 / 1,000 with 100 of each class in validation and in
test (`chainrule.data.splits.stratified_split`, `SPLIT_SEED`), each split in shuffled order. The
file holds 284 pairs of identical images (always of one class); both copies of a pair go to the
same split, so no test image is also a training image.
"""

from __future__ import annotations

import io
import os

import numpy as np

from chainrule.data.base import Dataset
from chainrule.data.images import binarization_note, binarized_dataset, cached_npz, eight_bit_dataset
from chainrule.data.sources import NumpyOnlyUnpickler, WheelFile
from chainrule.data.splits import stratified_split
from chainrule.decompress import read_gzip_file
from chainrule.errors import ChainruleError

ANIMAL_IMAGES = WheelFile(
    filename="animal_data_version_3.gz",
    package="animal-mnist==0.4",
    member="animal_mnist/data/Animal_MNIST/animal_data_version_3.gz",
    sha256="68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
)
ANIMAL_LABELS = WheelFile(
    filename="animal_label_version_3.gz",
    package="animal-mnist==0.4",
    member="animal_mnist/data/Animal_MNIST/animal_label_version_3.gz",
    sha256="dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57",
)
CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
#: Seed of the fixed stratified split.
SPLIT_SEED = 0
#: Images of each class in the validation split and in the test split.
VAL_PER_CLASS = TEST_PER_CLASS = 100


def read_pickled_array(path: str | os.PathLike) -> np.ndarray:
    """The numpy array in a gzip'd pickle; any other object in the pickle is refused."""
    try:
        obj = NumpyOnlyUnpickler(io.BytesIO(read_gzip_file(path))).load()
    except ChainruleError as e:
        raise ChainruleError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - an unpickler's failures on damaged bytes are open-ended
        raise ChainruleError(f"{path}: not a readable gzip'd numpy pickle ({e})") from None
    if not isinstance(obj, np.ndarray):
        raise ChainruleError(f"{path}: expected a numpy array, the pickle holds a {type(obj).__name__}")
    return obj


def _read_animals() -> dict[str, np.ndarray]:
    x = read_pickled_array(ANIMAL_IMAGES.fetch())
    y = read_pickled_array(ANIMAL_LABELS.fetch())
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
        raise ChainruleError(
            f"animal silhouettes: expected uint8 images (N, 28, 28) and N labels, got {x.dtype} {x.shape}"
            f" and {y.shape}"
        )
    if y.min(initial=0) < 0 or y.max(initial=0) >= len(CLASSES):
        raise ChainruleError("animal silhouettes: labels must be 0..9")
    x, y = x.reshape(len(x), -1), y.astype(np.uint8)
    duplicates = np.unique(x, axis=0, return_inverse=True)[1].reshape(-1)  # equal images, equal id
    rows = stratified_split(y, {"val": VAL_PER_CLASS, "test": TEST_PER_CLASS}, SPLIT_SEED, groups=duplicates)
    return {f"{k}_{s}": (x if k == "x" else y)[rows[s]] for s in ("train", "val", "test") for k in "xy"}


def animal_silhouettes_uint8() -> dict[str, np.ndarray]:
    """Images as uint8 (N, 784) and labels per split; cached as .npz after the first read."""
    return cached_npz("animal-silhouettes-uint8.npz", _read_animals)


def _description(values: str) -> str:
    return (
        f"animal silhouettes (animal-mnist 0.4), 28x28, {values}; 8k/1k/1k, {VAL_PER_CLASS} per class in"
        f" val and test (stratified_split seed {SPLIT_SEED}, identical images kept in one split); labels"
        f" 0-9: {', '.join(CLASSES)}"
    )


def animal_silhouettes() -> Dataset:
    """8-bit animal silhouettes: grey levels 0..255 (num_values 256)."""
    return eight_bit_dataset(
        "animal-silhouettes", animal_silhouettes_uint8(), (28, 28), _description("grey levels 0..255")
    )


def binarized_animal_silhouettes() -> Dataset:
    """Animal silhouettes binarized as binarized-mnist is (an out-of-distribution set for MNIST)."""
    return binarized_dataset(
        "binarized-animal-silhouettes",
        animal_silhouettes_uint8(),
        (28, 28),
        _description(binarization_note()),
    )
