"""Bounded decompression: a small gzip file must not expand to gigabytes in memory.

`gunzip_bounded` reads a gzip stream in chunks and stops with a ChainruleError once the output
passes the limit: `MAX_DECOMPRESSED_BYTES` (1 GiB) or `MAX_RATIO` times the compressed size,
whichever is larger (so a genuinely large data file is never refused for its ratio alone).
The environment variable CHAINRULE_MAX_DECOMPRESSED_BYTES overrides the absolute limit.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

from chainrule.errors import ChainruleError

MAX_DECOMPRESSED_BYTES = 1 << 30
MAX_RATIO = 100
CHUNK = 1 << 20


def decompression_limit(compressed_size: int) -> int:
    """The most bytes a gzip file of `compressed_size` bytes may expand to."""
    env = os.environ.get("CHAINRULE_MAX_DECOMPRESSED_BYTES")
    base = MAX_DECOMPRESSED_BYTES
    if env:
        try:
            base = int(env)
        except ValueError:
            raise ChainruleError(
                f"CHAINRULE_MAX_DECOMPRESSED_BYTES must be an integer number of bytes, got {env!r}"
            ) from None
    return max(base, MAX_RATIO * compressed_size)


def gunzip_bounded(data: bytes, source: str, limit: int | None = None) -> bytes:
    """Decompress gzip `data` (from `source`, named in errors), refusing output past `limit`."""
    limit = decompression_limit(len(data)) if limit is None else limit
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                if out.tell() > limit:
                    raise ChainruleError(
                        f"{source}: decompresses to more than {limit:,} bytes (from {len(data):,});"
                        " refused as a likely decompression bomb (raise"
                        " CHAINRULE_MAX_DECOMPRESSED_BYTES if the file is genuine)"
                    )
    except (OSError, EOFError, zlib.error) as e:
        raise ChainruleError(f"{source}: not a readable gzip file ({e})") from None
    return out.getvalue()


def read_gzip_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The decompressed bytes of a gzip file, bounded as `gunzip_bounded`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ChainruleError(f"cannot read {path}: {e}") from None
    return gunzip_bounded(raw, str(path), limit)
