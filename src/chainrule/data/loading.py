"""Minibatches for maximum-likelihood training, the same on one process or many.

The training order of epoch `e` is one permutation seeded by `(seed, e)` (torch's
`DistributedSampler`, also on a single process); global minibatch k is the contiguous slice
k*B..(k+1)*B of it, and with W processes each takes every W-th example of that slice (B/W each).
So a W-process run sees exactly the minibatches of a 1-process run with the same global batch B,
and a run resumed at an epoch boundary sees exactly the minibatches it would have seen.
Validation is split across processes without padding (each example counted once).
Batches are `(x, index)`: the index lets dynamic binarization depend on the example, not on
the process that reads it. Rows are fetched a batch at a time (`__getitems__`), so a
memory-mapped split reads one sorted run of rows per minibatch.
"""

from __future__ import annotations

from typing import Protocol

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from chainrule.errors import ChainruleError


class RowSource(Protocol):
    """A tensor (N, D) or a lazily read `ArraySplit`."""

    shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, key): ...


def read_rows(source: RowSource, index: torch.Tensor) -> torch.Tensor:
    rows = getattr(source, "rows", None)
    return rows(index) if rows is not None else source[index]


class Rows(torch.utils.data.Dataset):
    """Examples of one split; a batch of indices gives `(x, index)` in one read."""

    def __init__(self, source: RowSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, idx = self.__getitems__([i])
        return x[0], idx[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return read_rows(self.source, idx), idx


def as_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn: `Rows.__getitems__` already returns a whole batch."""
    return batch


class ShardSampler(DistributedSampler):
    """torch's `DistributedSampler` (shuffle, drop_last) with the same order, but holding the
    permutation as one int64 tensor instead of Python lists: 16 MB rather than about 150 MB for
    2 million examples."""

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        perm = torch.randperm(len(self.dataset), generator=g)[: self.total_size]
        mine = perm[self.rank : self.total_size : self.num_replicas]
        for chunk in mine.split(1 << 16):
            yield from chunk.tolist()


def per_process_batch(global_batch: int, world_size: int) -> int:
    if global_batch < 1 or global_batch % world_size:
        raise ChainruleError(
            f"train.batch_size={global_batch} is the global batch: it must be a positive multiple of"
            f" the number of processes ({world_size})"
        )
    return global_batch // world_size


def train_loader(
    source: RowSource,
    global_batch: int,
    *,
    world_size: int = 1,
    rank: int = 0,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Shuffled (seed + epoch), last incomplete global batch dropped; this process's share."""
    batch = per_process_batch(global_batch, world_size)
    if len(source) < global_batch:
        raise ChainruleError(
            f"the training split has {len(source)} examples, fewer than one batch (train.batch_size="
            f"{global_batch})"
        )
    sampler = ShardSampler(
        Rows(source), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    return DataLoader(
        Rows(source),
        batch_size=batch,
        sampler=sampler,
        drop_last=True,
        collate_fn=as_batch,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


def eval_loader(
    source: RowSource,
    batch_size: int = 1000,
    *,
    world_size: int = 1,
    rank: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """In order; with several processes each takes every world_size-th example, none repeated."""
    if len(source) < world_size:
        raise ChainruleError(f"{len(source)} evaluation examples cannot be split over {world_size} processes")
    rows = Rows(source)
    sampler = (
        UnrepeatedDistributedSampler(rows, num_replicas=world_size, rank=rank, shuffle=False)
        if world_size > 1
        else SequentialSampler(rows)
    )
    return DataLoader(
        rows,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=as_batch,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


#: Examples per validation batch during training (`train.limit_val_batches` counts these).
VAL_BATCH = 1000


class SplitsData(L.LightningDataModule):
    """Train/validation loaders built once Lightning knows this process's rank and world size."""

    def __init__(self, train: RowSource, val: RowSource, global_batch: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.train, self.val = train, val
        self.global_batch, self.seed, self.num_workers = global_batch, seed, num_workers

    def _layout(self) -> dict:
        t = self.trainer
        assert t is not None
        return {
            "world_size": t.world_size,
            "rank": t.global_rank,
            "num_workers": self.num_workers,
            "pin_memory": t.strategy.root_device.type == "cuda",
        }

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.train, self.global_batch, seed=self.seed, **self._layout())

    def val_dataloader(self) -> DataLoader:
        return eval_loader(self.val, VAL_BATCH, **self._layout())
