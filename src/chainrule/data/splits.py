"""Fixed, seeded, class-balanced splits that do not depend on a library's random stream.

Rows are ordered by a 32-bit integer hash of (seed, row index) (`chainrule.data.binarize.hash32`,
a bijection on 32-bit values, so no two rows tie): the order is the same on every numpy and torch
version, and a split can be recomputed from this description alone.
"""

from __future__ import annotations

import numpy as np
import torch

from chainrule.data.binarize import MASK32, hash32
from chainrule.errors import ChainruleError


def seeded_order(n: int, seed: int) -> np.ndarray:
    """A fixed permutation of range(n): row i sorted by the key hash32(i XOR hash32(seed))."""
    if not 0 <= n < 1 << 32:
        raise ChainruleError(f"seeded_order needs 0 <= n < 2**32 rows, got {n}")
    key = int(hash32(torch.tensor(seed & MASK32)).item())
    keys = hash32(torch.arange(n, dtype=torch.int64) ^ key)
    return np.argsort(keys.numpy(), kind="stable")


def stratified_split(
    labels: np.ndarray, per_class: dict[str, int], seed: int, groups: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Row indices of each split named in `per_class` (that many rows of every class) and of
    "train" (all other rows). Within a class, rows are taken in `seeded_order`, the splits filled
    in the order given. With `groups`, rows of equal group id (e.g. duplicate images) always land
    in the same split: a group that does not fit in what is left of a split is passed over.
    Every split lists its rows in `seeded_order`, so classes are mixed, not sorted."""
    labels = np.asarray(labels)
    if "train" in per_class:
        raise ChainruleError("stratified_split: 'train' gets the remaining rows; do not size it")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != labels.shape:
            raise ChainruleError(f"stratified_split: {groups.shape} groups for {labels.shape} labels")
        if len(np.unique(np.stack([groups, labels]), axis=1)[0]) != len(np.unique(groups)):
            raise ChainruleError("stratified_split: a group holds rows of different classes")
    order = seeded_order(len(labels), seed)
    names = ["train", *per_class]
    which = np.zeros(len(labels), dtype=np.int64)  # index into `names`; 0 = train
    for c in np.unique(labels):
        rows = order[labels[order] == c]
        _, first, inverse = np.unique(
            rows if groups is None else groups[rows], return_index=True, return_inverse=True
        )
        size = np.bincount(inverse)
        split_of = np.zeros(len(size), dtype=np.int64)
        for k, name in enumerate(per_class, start=1):
            left = per_class[name]
            for g in np.argsort(first):  # groups in the order of their first row
                if left == 0:
                    break
                if split_of[g] == 0 and size[g] <= left:
                    split_of[g], left = k, left - size[g]
            if left:
                raise ChainruleError(
                    f"class {c} has too few rows (or groups that fit) to give split {name!r}"
                    f" {per_class[name]} rows"
                )
        which[rows] = split_of[inverse]
    return {name: order[which[order] == k] for k, name in enumerate(names)}
