"""MNIST digits painted one random colour per image: colour data for colour-masked PixelCNNs.

No colour image set (CIFAR) is available offline, so each MNIST image gets a colour drawn from its
index alone (train image i has index i, validation 50,000 + i, test 60,000 + i), with the
counter-based hash `chainrule.data.binarize.uniform_bits(index, dim, seed, epoch=0)` (24-bit
uniforms u; the same on every platform and library version):

- `colour-mnist` (8-bit): v_c = 1 + floor(255 u_c / 2^24) for c = R, G, B (seed `COLOUR_SEED`),
  colour_c = round(255 v_c / max(v)), so the brightest channel is 255; a pixel of grey level k
  has channel value round(k colour_c / 255).
- `colour-mnist-2` (one bit per channel): the colour code is 1 + floor(7 u / 2^24), in 1..7
  (seed `CODE_SEED`; R = bit 2, G = bit 1, B = bit 0, so 1 = blue, 4 = red, 7 = white). The digit
  is binarized once with p = k/255 (validation and test exactly as in binarized-mnist, torch seeds
  0 and 1; train with torch seed `TRAIN_BINARIZATION_SEED`); channel c of a pixel is 1 iff the
  pixel is on and bit c of the code is set. The draw is fixed, not redrawn each minibatch: the
  three channels of a pixel must switch on together.

Images are flat (N, 28*28*3), channel fastest: flat index (row*28 + col)*3 + c. Not cached: both
are computed from the cached 8-bit MNIST in about a second.
"""

from __future__ import annotations

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.data.binarize import uniform_bits
from chainrule.data.images import BINARIZATION_SEED, SPLITS, eight_bit_dataset
from chainrule.data.mnist import mnist_uint8

COLOUR_SEED = 0
CODE_SEED = 1
#: torch seed of the fixed binarization of the training digits of colour-mnist-2.
TRAIN_BINARIZATION_SEED = BINARIZATION_SEED + 2
#: Index of the first image of each split (MNIST's 50k/10k/10k order).
OFFSETS = {"train": 0, "val": 50_000, "test": 60_000}


def mnist_colours(index: np.ndarray) -> np.ndarray:
    """The RGB colour (uint8, (N, 3), brightest channel 255) of the images `index` in colour-mnist."""
    u = uniform_bits(torch.as_tensor(np.asarray(index, dtype=np.int64)), 3, COLOUR_SEED, 0).numpy()
    v = 1 + (u * 255 >> 24)
    top = v.max(axis=1, keepdims=True)
    return ((2 * 255 * v + top) // (2 * top)).astype(np.uint8)  # round(255 v / max v), halves up


def mnist_colour_codes(index: np.ndarray) -> np.ndarray:
    """The 3-bit colour code (1..7; R = 4, G = 2, B = 1) of the images `index` in colour-mnist-2."""
    u = uniform_bits(torch.as_tensor(np.asarray(index, dtype=np.int64)), 1, CODE_SEED, 0).numpy()[:, 0]
    return (1 + (u * 7 >> 24)).astype(np.uint8)


def _index(split: str, n: int) -> np.ndarray:
    return OFFSETS[split] + np.arange(n, dtype=np.int64)


def paint(grey: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """uint8 (N, P) grey levels times per-image colours (N, 3) -> uint8 (N, P*3), channel fastest."""
    k = grey.astype(np.uint32)[:, :, None]
    c = colours.astype(np.uint32)[:, None, :]
    return ((2 * k * c + 255) // 510).astype(np.uint8).reshape(len(grey), -1)  # round(k c / 255)


def colour_mnist() -> Dataset:
    """8-bit colour MNIST: 28x28x3, values 0..255, one random colour per image."""
    a = mnist_uint8()
    arrays = {}
    for s in SPLITS:
        x = a[f"x_{s}"]
        arrays[f"x_{s}"] = paint(x, mnist_colours(_index(s, len(x))))
        arrays[f"y_{s}"] = a[f"y_{s}"]
    return eight_bit_dataset(
        "colour-mnist",
        arrays,
        (28, 28, 3),
        "MNIST 50k/10k/10k painted one colour per image, 28x28x3 (channel fastest), values 0..255;"
        f" colour from uniform_bits(image index, 3, seed {COLOUR_SEED}) scaled so its brightest channel is"
        " 255, channel = round(grey * colour / 255); labels are the digits",
    )


def colour_mnist_2() -> Dataset:
    """Colour MNIST with one bit per channel: 28x28x3, values 0/1 (num_values 2)."""
    a = mnist_uint8()
    splits, labels = {}, {}
    for i, s in enumerate(SPLITS):
        probs = torch.from_numpy(a[f"x_{s}"]).float() / 255.0
        seed = TRAIN_BINARIZATION_SEED if s == "train" else BINARIZATION_SEED + i - 1
        on = torch.bernoulli(probs, generator=torch.Generator().manual_seed(seed)).bool()
        code = torch.from_numpy(mnist_colour_codes(_index(s, len(probs))).astype(np.int64))
        bits = torch.stack([(code >> 2) & 1, (code >> 1) & 1, code & 1], dim=1).bool()  # R, G, B
        splits[s] = (on[:, :, None] & bits[:, None, :]).reshape(len(probs), -1).float()
        labels[s] = torch.from_numpy(a[f"y_{s}"]).long()
    return Dataset(
        name="colour-mnist-2",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        num_values=2,
        image_shape=(28, 28, 3),
        labels=labels,
        description="MNIST 50k/10k/10k, 28x28x3 (channel fastest), one bit per channel: the digit binarized"
        f" once with p = k/255 (val/test as binarized-mnist, torch seeds {BINARIZATION_SEED}/"
        f"{BINARIZATION_SEED + 1}; train torch seed {TRAIN_BINARIZATION_SEED}), channel c on iff the pixel"
        f" is on and bit c of the image's colour code 1..7 is set (R=4, G=2, B=1; code from"
        f" uniform_bits(image index, 1, seed {CODE_SEED})); labels are the digits",
    )
