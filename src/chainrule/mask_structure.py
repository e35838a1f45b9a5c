"""The structure of an autoregressive mask that a masked layer can exploit: row blocks, each with
the prefix of columns its rows use (a staircase: FVSBN's triangle, a MADE whose hidden units are
sorted by degree), and whether the mask is exactly a triangle (`ones.tril(diagonal)`). Found once
per mask by `MaskedLinear.set_mask`."""

from __future__ import annotations

import torch

#: (first row, end row, columns used, leading columns every row uses) of each row block; None:
#: one dense matmul
RowBlocks = tuple[tuple[int, int, int, int], ...] | None
#: a mask with what `set_mask` found in it (row blocks, triangle diagonal): kept by a model that
#: switches between masks (a connectivity ensemble), so that switching back costs nothing
MaskState = tuple[torch.Tensor, RowBlocks, int | None]

#: rows per block aimed at (fewer, larger matmuls past this gain little), and the most blocks
BLOCK_ROWS, MAX_BLOCKS = 192, 16
#: use blocks only when they skip at least this fraction of the dense multiply-adds
MIN_SAVING = 0.15


def triangle(mask: torch.Tensor) -> int | None:
    """The `diagonal` for which `mask` is exactly `ones.tril(diagonal)`, or None. A few rows are
    looked at first, so that other masks (a connectivity ensemble sets one per training step)
    are turned down without a pass over the whole mask."""
    if mask.dim() != 2 or not mask.numel():
        return None
    rows, cols = mask.shape
    diagonal = int(torch.count_nonzero(mask[0])) - 1
    for r in sorted({1, rows // 2, rows - 1} & set(range(rows))):
        if int(torch.count_nonzero(mask[r])) != min(max(r + diagonal + 1, 0), cols):
            return None
    return diagonal if torch.equal(mask, torch.ones_like(mask).tril(diagonal)) else None


def row_blocks(mask: torch.Tensor) -> RowBlocks:
    """Equal row blocks of `mask`, each with one past the last column any of its rows uses and
    the number of leading columns all its rows use (there the mask is all ones: the weight is
    used as it is, unmasked), when that skips at least `MIN_SAVING` of the dense work; else
    None."""
    rows, cols = mask.shape
    count = max(1, min(MAX_BLOCKS, rows // BLOCK_ROWS))
    if count == 1 or cols < 2:
        return None
    edges = [round(i * rows / count) for i in range(count + 1)]
    blocks, work = [], 0
    for r0, r1 in zip(edges[:-1], edges[1:]):
        used = torch.nonzero(mask[r0:r1].any(0))
        width = int(used.max()) + 1 if used.numel() else 0
        work += (r1 - r0) * width
        if work > (1 - MIN_SAVING) * rows * cols:  # early exit: unsorted masks fail in block 0
            return None
        everywhere = mask[r0:r1, :width].all(0)
        full = width if bool(everywhere.all()) else int(torch.argmin(everywhere.int()))
        blocks.append((r0, r1, width, full))
    return tuple(blocks)
