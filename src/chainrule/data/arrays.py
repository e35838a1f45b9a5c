"""Datasets larger than memory: uint8 `.npy` files (one or several shards per split), memory-mapped
and read row by row, plus a `meta.json`. Load one with `load_dataset("mmap:PATH")`.

```
PATH/meta.json          {"format": "chainrule-arrays", "version": 1, "num_values": 2, ...}
PATH/train-00000.npy    uint8 (rows, D); more shards: train-00001.npy, ...
PATH/val-00000.npy
PATH/test-00000.npy
```

A stored byte `v` is the value `v` of its split, except that with `dynamic_binarization` the train
split holds intensities `v / 255` (binarized afresh every minibatch) while val/test hold fixed 0/1
values. Reading pages the rows in; pages are handed back to the kernel every
`RELEASE_BYTES` mapped, so the resident memory of a run stays bounded, whatever the file size.
"""

from __future__ import annotations

import bisect
import json
import mmap
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_json

FORMAT = "chainrule-arrays"
VERSION = 1
META = "meta.json"
SPLITS = ("train", "val", "test")
#: Estimated mapped bytes after which a split releases its pages (MADV_DONTNEED).
RELEASE_BYTES = 256 << 20
#: What one scattered row read maps: Linux maps up to 64 KiB around a faulting page that is in
#: the page cache ("fault-around"), so a 784-byte row can cost 64 KiB of resident memory.
FAULT_AROUND_BYTES = 64 << 10


class _Shard:
    """One memory-mapped `.npy` file of uint8 rows."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
                offset = f.tell()
                if dtype != np.uint8 or fortran or len(shape) != 2:
                    raise ChainruleError(
                        f"{path}: expected a C-ordered uint8 array of shape (rows, dim), got {dtype}"
                        f" {shape}{' (Fortran order)' if fortran else ''}"
                    )
                size = os.fstat(f.fileno()).st_size
                if size < offset + shape[0] * shape[1]:
                    raise ChainruleError(f"{path} is truncated: {size} bytes for a {shape} array")
                self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if shape[0] else None
        except (OSError, ValueError) as e:
            raise ChainruleError(f"cannot read {path} as a .npy array ({e})") from None
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        if self.map is not None and hasattr(self.map, "madvise"):
            self.map.madvise(mmap.MADV_RANDOM)  # no read-ahead: minibatches pick scattered rows
        self.array = (
            np.frombuffer(self.map, np.uint8, self.shape[0] * self.shape[1], offset).reshape(self.shape)
            if self.map is not None
            else np.zeros(self.shape, np.uint8)
        )

    def release(self) -> None:
        """Drop this process's mapped pages (they stay in the page cache; re-read on demand)."""
        if self.map is not None and hasattr(self.map, "madvise"):
            self.map.madvise(mmap.MADV_DONTNEED)


class ArraySplit:
    """One split: rows of uint8 shards, read lazily; indexing returns float32 tensors."""

    def __init__(self, files: list[Path], divisor: float = 1.0, binarize_seed: int | None = None):
        if not files:
            raise ChainruleError("a split needs at least one .npy shard")
        self.files = [Path(f) for f in files]
        self.divisor = float(divisor)
        self.binarize_seed = binarize_seed
        self._open()

    def _open(self) -> None:
        self.shards = [_Shard(f) for f in self.files]
        dims = {s.shape[1] for s in self.shards}
        if len(dims) != 1:
            raise ChainruleError(f"shards of one split have different widths {sorted(dims)}: {self.files}")
        self.starts = [0]
        for s in self.shards:
            self.starts.append(self.starts[-1] + s.shape[0])
        self._read = 0

    # pickled by path (DataLoader workers started by spawn), never by content
    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "divisor": self.divisor, "binarize_seed": self.binarize_seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.starts[-1], self.shards[0].shape[1])

    def __len__(self) -> int:
        return self.starts[-1]

    def binarized(self, seed: int) -> ArraySplit:
        """A view whose rows are one fixed Bernoulli draw of these probabilities."""
        return ArraySplit(self.files, self.divisor, binarize_seed=seed)

    def rows(self, index: torch.Tensor | np.ndarray | Iterable[int]) -> torch.Tensor:
        """Rows `index` (any order, repeats allowed) as float32 (len(index), dim)."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ChainruleError(f"row index out of range for a split of {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        order = np.argsort(idx, kind="stable")
        out = np.empty((idx.size, self.shape[1]), np.uint8)
        sorted_idx = idx[order]
        for k, shard in enumerate(self.shards):  # contiguous runs of sorted rows per shard
            lo = bisect.bisect_left(sorted_idx, self.starts[k])
            hi = bisect.bisect_left(sorted_idx, self.starts[k + 1])
            if hi > lo:
                out[order[lo:hi]] = shard.array[sorted_idx[lo:hi] - self.starts[k]]
        self._account(idx.size * max(FAULT_AROUND_BYTES, self.shape[1]))
        x = torch.from_numpy(out).float()
        if self.divisor != 1.0:
            x.div_(self.divisor)
        if self.binarize_seed is not None:
            from chainrule.data.binarize import binarize

            x = binarize(x, torch.from_numpy(idx), self.binarize_seed, epoch=0)
        return x

    def _account(self, nbytes: int) -> None:
        self._read += nbytes
        if self._read >= RELEASE_BYTES:
            for s in self.shards:
                s.release()
            self._read = 0

    def __getitem__(self, key: int | slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(key, slice):
            return self.rows(np.arange(len(self))[key])
        if isinstance(key, int):
            return self.rows([key])[0]
        return self.rows(key)

    def to_tensor(self) -> torch.Tensor:
        """The whole split in memory (for small splits)."""
        return self.rows(np.arange(len(self)))


@dataclass
class ArrayMeta:
    """Contents of `meta.json`."""

    name: str
    num_values: int
    image_shape: list[int] | None
    dynamic_binarization: bool
    splits: dict[str, list[str]]
    description: str = ""

    def divisor(self, split: str) -> float:
        """Stored byte / divisor = value: intensities k/255 for a dynamically binarized train split."""
        return 255.0 if self.dynamic_binarization and split == "train" else 1.0


def read_meta(path: str | os.PathLike) -> ArrayMeta:
    path = Path(path)
    file = path / META
    if not path.is_dir():
        raise ChainruleError(f"array dataset folder {str(path)!r} does not exist")
    if not file.is_file():
        raise ChainruleError(f"{file} is missing: not a chainrule array dataset (see `chainrule data`)")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChainruleError(f"{file} is corrupt (not valid JSON: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ChainruleError(f"{file}: not a {FORMAT} version {VERSION} file")
    try:
        out = ArrayMeta(
            name=str(meta["name"]),
            num_values=int(meta["num_values"]),
            image_shape=list(meta["image_shape"]) if meta.get("image_shape") else None,
            dynamic_binarization=bool(meta["dynamic_binarization"]),
            splits={s: [str(f) for f in meta["splits"][s]] for s in SPLITS},
            description=str(meta.get("description", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ChainruleError(f"{file} lacks or mangles an entry ({e!r})") from None
    if not 2 <= out.num_values <= 256:
        raise ChainruleError(f"{file}: num_values must be in 2..256, got {out.num_values}")
    if out.dynamic_binarization and out.num_values != 2:
        raise ChainruleError(f"{file}: dynamic_binarization needs num_values 2")
    return out


def open_array_dataset(path: str | os.PathLike) -> Dataset:
    """The `Dataset` of an array folder; every split stays on disk and is read lazily."""
    path = Path(path)
    meta = read_meta(path)
    splits = {s: ArraySplit([path / f for f in meta.splits[s]], meta.divisor(s)) for s in SPLITS}
    dims = {s: x.shape[1] for s, x in splits.items()}
    if len(set(dims.values())) != 1:
        raise ChainruleError(f"{path}: splits have different widths {dims}")
    if meta.image_shape and int(np.prod(meta.image_shape)) != dims["train"]:
        raise ChainruleError(f"{path}: image_shape {meta.image_shape} does not hold {dims['train']} values")
    for s, x in splits.items():
        if len(x) == 0:
            raise ChainruleError(f"{path}: split {s!r} is empty")
    return Dataset(
        name=meta.name,
        train=splits["train"],  # type: ignore[arg-type]
        val=splits["val"],  # type: ignore[arg-type]
        test=splits["test"],  # type: ignore[arg-type]
        num_values=meta.num_values,
        image_shape=tuple(meta.image_shape) if meta.image_shape else None,
        dynamic_binarization=meta.dynamic_binarization,
        description=meta.description or f"array dataset at {path}",
    )


def write_array_dataset(
    path: str | os.PathLike,
    splits: dict[str, SplitSource],
    *,
    name: str,
    num_values: int,
    image_shape: list[int] | None = None,
    dynamic_binarization: bool = False,
    shard_rows: int = 1 << 20,
    description: str = "",
) -> Path:
    """Stream each split's uint8 chunks into `.npy` shards of at most `shard_rows` rows (memory
    stays at one chunk), then write `meta.json` last: a half-written folder is never a dataset."""
    path = Path(path)
    if (path / META).exists():
        raise ChainruleError(f"{path} already holds a dataset ({META}); choose another folder")
    if set(splits) != set(SPLITS):
        raise ChainruleError(f"write_array_dataset needs exactly the splits {SPLITS}")
    if shard_rows < 1:
        raise ChainruleError(f"shard_rows must be positive, got {shard_rows}")
    path.mkdir(parents=True, exist_ok=True)
    names = {s: _write_shards(path, s, splits[s], shard_rows) for s in SPLITS}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "num_values": num_values,
        "image_shape": image_shape,
        "dynamic_binarization": dynamic_binarization,
        "splits": names,
        "description": description,
    }
    atomic_write_json(path / META, meta)
    return path


@dataclass
class SplitSource:
    """`rows` x `dim` uint8 values, delivered as chunks of rows in order."""

    rows: int
    dim: int
    chunks: Iterable[np.ndarray]


def _write_shards(path: Path, split: str, source: SplitSource, shard_rows: int) -> list[str]:
    if source.rows < 1 or source.dim < 1:
        raise ChainruleError(f"split {split!r} must have rows and columns, got ({source.rows}, {source.dim})")
    sizes = [min(shard_rows, source.rows - start) for start in range(0, source.rows, shard_rows)]
    names = [f"{split}-{k:05d}.npy" for k in range(len(sizes))]
    chunks = iter(source.chunks)
    pending = np.empty((0, source.dim), np.uint8)
    for name, size in zip(names, sizes):
        tmp = path / f".{name}.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(size, source.dim))
        at = 0
        while at < size:
            if not len(pending):
                pending = _check_chunk(next(chunks, None), split, source.dim)
            take = min(size - at, len(pending))
            out[at : at + take] = pending[:take]
            pending, at = pending[take:], at + take
        out.flush()
        del out
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path / name)
    if len(pending) or next(chunks, None) is not None:
        raise ChainruleError(f"split {split!r} delivered more than the announced {source.rows} rows")
    return names


def _check_chunk(c: np.ndarray | None, split: str, dim: int) -> np.ndarray:
    if c is None:
        raise ChainruleError(f"split {split!r} delivered fewer rows than announced")
    c = np.asarray(c)
    if c.dtype != np.uint8 or c.ndim != 2 or c.shape[1] != dim:
        raise ChainruleError(
            f"chunks of split {split!r} must be uint8 (rows, {dim}), got {c.dtype} {c.shape}"
        )
    return c


def export_dataset(dataset: Dataset, path: str | os.PathLike, shard_rows: int = 1 << 20) -> Path:
    """Write an in-memory `Dataset` in the array format (intensities k/255 of a dynamically
    binarized train split are stored as k; every other value must be an integer in 0..255)."""
    if not 2 <= dataset.num_values <= 256:
        raise ChainruleError(
            f"array datasets hold discrete values (2 to 256 levels); {dataset.name!r} has"
            f" {'real values' if dataset.num_values == 0 else f'{dataset.num_values} levels'}"
        )

    def source(split: str, chunk: int = 1 << 16) -> SplitSource:
        x = getattr(dataset, split)
        scale = 255.0 if dataset.dynamic_binarization and split == "train" else 1.0

        def chunks():
            for i in range(0, len(x), chunk):
                v = torch.as_tensor(x[i : i + chunk]).double() * scale
                q = torch.round(v)
                if (q - v).abs().max() > 1e-3 or q.min() < 0 or q.max() > 255:
                    raise ChainruleError(
                        f"{dataset.name}/{split}: values must be integers in 0..255 (or k/255 intensities)"
                    )
                yield q.to(torch.uint8).numpy()

        return SplitSource(len(x), int(x.shape[1]), chunks())

    return write_array_dataset(
        path,
        {s: source(s) for s in SPLITS},
        name=dataset.name,
        num_values=dataset.num_values,
        image_shape=list(dataset.image_shape) if dataset.image_shape else None,
        dynamic_binarization=dataset.dynamic_binarization,
        shard_rows=shard_rows,
        description=dataset.description,
    )
