"""Lossless code lengths of images, in bits: the complexity estimate L(x) of Serrà et al. (2020).

`code_lengths(x, image_shape, num_values, compressor)` compresses each image on its own and counts
the bits of the compressed pixel stream. Compressors (Python's standard library and Pillow):

- `png`: a PNG written by Pillow at level 9 (1 bit a pixel for binary images, else 8 bits a
  sub-pixel, grey "L" or colour "RGB"), counting the deflate data inside its IDAT chunks;
- `zlib`: raw deflate (level 9) of the packed pixels: 8 binary pixels a byte (each row padded to
  whole bytes), else one byte a sub-pixel, in raster order;
- `bz2`: bzip2 (level 9) of the same bytes (its stream header is counted: a constant too);
- `lzma`: a raw LZMA2 stream (preset 9 | extreme, dictionary as long as the image) of the same
  bytes;
- `best` (the default): per image the shortest of the four, plus 2 bits that say which one, so
  it is itself a lossless code, never longer than any of them plus 2 bits.

Only the image-dependent part is counted: file signatures, chunk headers, zlib's 2-byte header and
4-byte checksum are the same for every image of a size, so leaving them out shifts every score by
one constant and changes no ranking. No single compressor is best on every kind of image (on
MNIST test images zlib gives the shortest binarized codes, lzma the shortest 8-bit ones, PNG beats
zlib on 8-bit Fashion-MNIST), hence `best`; `benchmarks/ood.py` records the mean bits per image of
each compressor on the data it scores.
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import struct
import zlib
from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from chainrule.errors import ChainruleError

SINGLE_COMPRESSORS = ("png", "zlib", "bz2", "lzma")
COMPRESSORS = ("best", *SINGLE_COMPRESSORS)
#: Per image the shortest code of SINGLE_COMPRESSORS (see the module docstring).
DEFAULT_COMPRESSOR = "best"
#: Bits that name the chosen compressor in the `best` code.
CHOICE_BITS = math.log2(len(SINGLE_COMPRESSORS))


def pixel_bytes(image: np.ndarray, num_values: int) -> bytes:
    """One image (H, W) or (H, W, C) of codes 0..num_values-1 as bytes: binary images packed 8 pixels
    a byte (each row padded to whole bytes), others one byte a sub-pixel (num_values <= 256)."""
    if num_values == 2:
        return np.packbits(image.astype(np.uint8), axis=1).tobytes()
    return image.astype(np.uint8).tobytes()


def png_idat_bytes(image: np.ndarray, num_values: int) -> int:
    """Bytes of deflate data in the IDAT chunks of a level-9 PNG of `image` written by Pillow
    (zlib's 6 bytes of header and checksum excluded)."""
    from PIL import Image

    if num_values == 2:
        pic = Image.fromarray(image.astype(bool))  # mode "1": 1 bit a pixel
    elif image.ndim == 3:
        pic = Image.fromarray(image.astype(np.uint8), mode="RGB")
    else:
        pic = Image.fromarray(image.astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    pic.save(buffer, format="PNG", compress_level=9)
    data = buffer.getvalue()
    total, at = 0, 8  # skip the 8-byte signature; chunks are length, type, data, CRC
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            total += length
        at += 12 + length
    return total - 6


def _byte_compressor(name: str) -> Callable[[bytes], int]:
    if name == "zlib":

        def deflate(b: bytes) -> int:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: no header or checksum
            return len(c.compress(b) + c.flush())

        return deflate
    if name == "bz2":
        return lambda b: len(bz2.compress(b, 9))

    def lzma2(b: bytes) -> int:  # a small dictionary: the default 64 MB costs 0.25 s to set up per call
        f = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": max(4096, len(b))}]
        return len(lzma.compress(b, format=lzma.FORMAT_RAW, filters=f))

    return lzma2


def image_bits(image: np.ndarray, num_values: int, compressor: str) -> float:
    """Bits of one image (H, W) or (H, W, C) of codes under `compressor` (one of COMPRESSORS)."""
    if compressor == "best":
        return min(image_bits(image, num_values, c) for c in SINGLE_COMPRESSORS) + CHOICE_BITS
    if compressor == "png":
        return 8.0 * png_idat_bytes(image, num_values)
    return 8.0 * _byte_compressor(compressor)(pixel_bytes(image, num_values))


def code_lengths(
    x: torch.Tensor,
    image_shape: tuple[int, ...] | None,
    num_values: int,
    compressor: str = DEFAULT_COMPRESSOR,
    progress: dict | None = None,
) -> torch.Tensor:
    """Bits of the lossless compression of each row of `x` (N, D), compressed one image at a time.

    `image_shape` is (H, W) or (H, W, C) with H*W*C = D (None: each row is one line of D values);
    values are codes 0..num_values-1, 2 <= num_values <= 256. `progress`: tqdm options (a bar on a
    terminal by default).
    """
    progress = {"desc": f"compressing ({compressor})", "disable": None, "leave": False, **(progress or {})}
    if compressor not in COMPRESSORS:
        raise ChainruleError(f"unknown compressor {compressor!r}; use one of {', '.join(COMPRESSORS)}")
    if not isinstance(num_values, int) or not 2 <= num_values <= 256:
        raise ChainruleError(
            f"input complexity compresses discrete images of 2..256 levels, got num_values={num_values!r}"
        )
    if x.dim() != 2:
        raise ChainruleError(f"expected images as rows of a 2-D tensor (N, D), got shape {tuple(x.shape)}")
    shape = tuple(image_shape) if image_shape else (1, x.shape[1])
    if math.prod(shape) != x.shape[1]:
        raise ChainruleError(
            f"rows have {x.shape[1]} values but the image shape {shape} holds {math.prod(shape)}"
        )
    codes = x.detach().cpu().round().long().numpy()
    if codes.size and (codes.min() < 0 or codes.max() >= num_values):
        raise ChainruleError(f"image values must be codes 0..{num_values - 1}")
    images = codes.reshape(len(codes), *shape)
    bits = [image_bits(img, num_values, compressor) for img in tqdm(images, **progress)]
    return torch.tensor(bits, dtype=torch.float64)
