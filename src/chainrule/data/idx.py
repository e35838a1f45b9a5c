"""Reading gzip'd IDX files, the format of the MNIST and Fashion-MNIST releases.

An IDX file is two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, one
big-endian uint32 per dimension, then the values in C order. Only the unsigned-byte type is read.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from chainrule.decompress import read_gzip_file
from chainrule.errors import ChainruleError

UBYTE = 0x08


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array in a gzip'd IDX file, with the shape its header gives."""
    data = read_gzip_file(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ChainruleError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != UBYTE:
        raise ChainruleError(f"{path}: IDX type 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ChainruleError(f"{path}: IDX header is truncated or has no dimensions")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != size:
        raise ChainruleError(
            f"{path}: IDX header says {shape} = {size} values but the file holds {len(data) - header}"
            " (truncated or corrupt)"
        )
    return np.frombuffer(data, np.uint8, size, header).reshape(shape)
