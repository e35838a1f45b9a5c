"""8-bit images held as uint8 arrays, cached as .npz, and the two dataset views built from them.

Arrays come as a dict `x_train, y_train, x_val, y_val, x_test, y_test`: images uint8 (N, D) with D =
H*W (grey) or H*W*C (colour, channel fastest: flat index (row*W + col)*C + c), labels (N,).
`eight_bit_dataset` gives values 0..255 (num_values 256); `binarized_dataset` treats k/255 as the
probability that a pixel is on, exactly as binarized MNIST does (train re-drawn every minibatch,
validation and test drawn once with fixed seeds).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.data.sources import cache_dir
from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_bytes

SPLITS = ("train", "val", "test")
#: torch seed of the one fixed Bernoulli draw of the validation split; the test split uses seed + 1.
BINARIZATION_SEED = 0


def cached_npz(filename: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays in `cache_dir()/filename`; the first time, `build()` makes them and they are
    written atomically (a killed first read leaves no half-written cache, and processes that
    build it at the same time each write a whole file)."""
    npz = cache_dir() / filename
    if not npz.is_file():
        buffer = io.BytesIO()  # in memory, so processes building at once never share a temporary file
        np.savez(buffer, **build())
        atomic_write_bytes(npz, buffer.getbuffer())
    try:
        with np.load(npz, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ChainruleError(
            f"{npz} is unreadable (corrupt or truncated: {e}); delete it and load again to rebuild it"
        ) from None


def _check(arrays: dict[str, np.ndarray], dim: int) -> None:
    for s in SPLITS:
        x, y = arrays.get(f"x_{s}"), arrays.get(f"y_{s}")
        if (
            x is None
            or y is None
            or x.dtype != np.uint8
            or x.ndim != 2
            or x.shape[1] != dim
            or len(y) != len(x)
        ):
            raise ChainruleError(
                f"image arrays of split {s!r} must be uint8 (N, {dim}) with N labels; delete the cached"
                f" .npz in {cache_dir()} and load again"
            )


def eight_bit_dataset(
    name: str, arrays: dict[str, np.ndarray], image_shape: tuple[int, ...], description: str
) -> Dataset:
    """Values 0..255 as float tensors (num_values 256), with labels for every split."""
    _check(arrays, int(np.prod(image_shape)))
    return Dataset(
        name=name,
        train=torch.from_numpy(arrays["x_train"]).float(),
        val=torch.from_numpy(arrays["x_val"]).float(),
        test=torch.from_numpy(arrays["x_test"]).float(),
        num_values=256,
        image_shape=tuple(image_shape),
        labels={s: torch.from_numpy(np.asarray(arrays[f"y_{s}"])).long() for s in SPLITS},
        description=description,
    )


def binarized_dataset(
    name: str, arrays: dict[str, np.ndarray], image_shape: tuple[int, ...], description: str
) -> Dataset:
    """Pixel k is on with probability k/255: `train` holds the probabilities (dynamic
    binarization), `val` and `test` one fixed draw each (torch seeds BINARIZATION_SEED, +1)."""
    _check(arrays, int(np.prod(image_shape)))
    probs = {s: torch.from_numpy(arrays[f"x_{s}"]).float() / 255.0 for s in SPLITS}
    fixed = {}
    for i, s in enumerate(("val", "test")):
        g = torch.Generator().manual_seed(BINARIZATION_SEED + i)
        fixed[s] = torch.bernoulli(probs[s], generator=g)
    return Dataset(
        name=name,
        train=probs["train"],
        val=fixed["val"],
        test=fixed["test"],
        num_values=2,
        image_shape=tuple(image_shape),
        dynamic_binarization=True,
        labels={s: torch.from_numpy(np.asarray(arrays[f"y_{s}"])).long() for s in SPLITS},
        description=description,
    )


def binarization_note() -> str:
    """The sentence every binarized image dataset's description ends with."""
    return (
        f"pixel on with p = k/255; train re-binarized every batch; val/test binarized once with torch"
        f" seeds {BINARIZATION_SEED}/{BINARIZATION_SEED + 1}"
    )
