"""The compressed file: a small header, then the arithmetic code.

Layout: the magic bytes `CRAC`, one byte of format version, a 4-byte big-endian header length, the
header (JSON, UTF-8), its CRC-32 (4 bytes), then the code. The header records the model (registry
name and `weights_sha256`, so decompressing with another model is a clear error rather than
garbage), the kind of data ("images" or "text"), its shape or length, the chunk of images the
sampler walked (the decoder must walk the same chunks), and CRC-32s of the code and of the
original data, so a damaged file is detected before and after decoding.

`compress(model, data)` / `decompress(model, blob)` are the Python API of `chainrule compress` /
`decompress`: images as a tensor (N, D) of levels, text as a str.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as save_bytes

from chainrule.coding.model_coder import (
    DEFAULT_CHUNK,
    check_codable,
    decode_images,
    decode_tokens,
    encode_images,
    encode_tokens,
)
from chainrule.errors import ChainruleError

MAGIC = b"CRAC"
FORMAT_VERSION = 1
_PREFIX = struct.Struct(">4sBI")


def weights_sha256(model) -> str:
    """The sha256 of the model's weights as `chainrule.save` writes them (its config's
    `weights_sha256`): what names the model in a compressed file."""
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
    return hashlib.sha256(save_bytes(tensors)).hexdigest()


def _data_bytes(kind: str, data: Any) -> bytes:
    """The canonical bytes of the original data, for its checksum."""
    if kind == "text":
        return data.encode("utf-8")
    return np.ascontiguousarray(data.cpu().numpy().astype(np.int64)).tobytes()


def pack(header: dict[str, Any], code: bytes) -> bytes:
    """Header and code as the bytes of a compressed file."""
    text = json.dumps(header, sort_keys=True).encode()
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)) + text + struct.pack(">I", zlib.crc32(text)) + code


def unpack(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, code) of a compressed file, or a ChainruleError saying what is wrong with it."""
    if len(blob) < _PREFIX.size or blob[:4] != MAGIC:
        raise ChainruleError("not a chainrule compressed file (it does not start with the bytes CRAC)")
    _, version, size = _PREFIX.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise ChainruleError(
            f"compressed file format version {version}; this chainrule reads version {FORMAT_VERSION}"
        )
    start = _PREFIX.size
    text, crc = blob[start : start + size], blob[start + size : start + size + 4]
    if len(crc) < 4 or struct.unpack(">I", crc)[0] != zlib.crc32(text):
        raise ChainruleError("the compressed file is corrupted (its header fails its checksum) or truncated")
    header = json.loads(text)
    code = blob[start + size + 4 :]
    if zlib.crc32(code) != header.get("code_crc32"):
        raise ChainruleError(
            "the compressed file is corrupted: its code fails its checksum (or it was truncated)"
        )
    return header, code


def read_header(blob: bytes) -> dict[str, Any]:
    """The header of a compressed file (checked as `decompress` checks it)."""
    return unpack(blob)[0]


def compress(
    model,
    data: torch.Tensor | str,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """A compressed file (bytes) of `data` under `model`: images (N, D) of levels for an image
    model (N >= 1), a non-empty str for a text model. `extra`: JSON-ready notes kept in the header
    (the CLI keeps the input's array shape there); `read_header` gives them back."""
    kind = check_codable(model)
    header: dict[str, Any] = {
        "model": model.registry_name,
        "weights_sha256": weights_sha256(model),
        "kind": kind,
        "extra": extra or {},
    }
    if kind == "text":
        if not isinstance(data, str) or not data:
            raise ChainruleError("a text model compresses a non-empty str")
        code = encode_tokens(model, model.encode(data, "text to compress"), progress)
        header["length"] = len(data)
    else:
        if not isinstance(data, torch.Tensor) or data.dim() != 2 or len(data) == 0:
            raise ChainruleError("an image model compresses a tensor of images (N, D) with N >= 1")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ChainruleError(f"chunk must be an integer >= 1, got {chunk!r}")
        code = encode_images(model, data, chunk, progress)
        data = data.round().long()
        header.update(shape=list(data.shape), chunk=chunk)
    header.update(code_crc32=zlib.crc32(code), data_crc32=zlib.crc32(_data_bytes(kind, data)))
    return pack(header, code)


def decompress(model, blob: bytes, *, progress: bool | None = None) -> torch.Tensor | str:
    """The data of a compressed file, decoded by the model that compressed it."""
    header, code = unpack(blob)
    kind = check_codable(model)
    sha = weights_sha256(model)
    if header["weights_sha256"] != sha:
        raise ChainruleError(
            f"this file was compressed with another model ({header['model']!r}, weights sha256"
            f" {header['weights_sha256'][:12]}...); this model ({model.registry_name!r}) has weights"
            f" {sha[:12]}...: decompress with the model that compressed it"
        )
    if header["kind"] != kind:
        raise ChainruleError(f"the file holds {header['kind']}, but the model codes {kind}")
    if kind == "text":
        data: torch.Tensor | str = model.decode(decode_tokens(model, code, header["length"], progress))
    else:
        n, dim = header["shape"]
        if dim != math.prod(model.event_shape):
            raise ChainruleError(
                f"the file holds images of {dim} values; the model's have {math.prod(model.event_shape)}"
            )
        data = decode_images(model, code, n, header["chunk"], progress)
    if zlib.crc32(_data_bytes(kind, data)) != header["data_crc32"]:
        raise ChainruleError(
            "decoding did not reproduce the original data (checksum mismatch): the file is corrupted, or"
            " this machine computes the model's probabilities differently from the one that compressed it"
        )
    return data
