"""`MaskedLinear`: a linear layer whose weight is multiplied by a fixed 0/1 mask on every call.

Autoregressive masks are mostly zeros in a staircase: FVSBN's is strictly lower-triangular, and
MADE's, with hidden units sorted by degree, give row r a prefix of columns [0, width_r). A dense
matmul spends half its work on those zeros. When the mask has that shape, the layer cuts its rows
into a few blocks and multiplies each block by the column prefix its rows use (`row_blocks`):
about 55-60 % of the multiply-adds, with exactly the same result (only exact zeros are skipped).
Masks without such structure (random orders, connectivity ensembles' other masks) use one
dense matmul. The mask is a buffer applied functionally; the weight is never edited in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.compiler import is_compiling as compiling

#: (first row, end row, columns used) of each row block; None: one dense matmul
RowBlocks = tuple[tuple[int, int, int], ...] | None

#: rows per block aimed at (fewer, larger matmuls past this gain little), and the most blocks
BLOCK_ROWS, MAX_BLOCKS = 192, 16
#: use blocks only when they skip at least this fraction of the dense multiply-adds
MIN_SAVING = 0.15


def row_blocks(mask: torch.Tensor) -> RowBlocks:
    """Equal row blocks of `mask`, each with one past the last column any of its rows uses, when
    that skips at least `MIN_SAVING` of the dense work; else None."""
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
        blocks.append((r0, r1, width))
    return tuple(blocks)


class MaskedLinear(nn.Linear):
    """`y = x (W * M)^T + b` with a fixed 0/1 mask `M` of the weight's shape."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        # derived from the model config, so not saved: files hold only what training learned
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)
        self.blocks: RowBlocks = None

    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the mask buffer by a new tensor (never edited in place, so graphs built with
        the old mask stay valid; the weight itself is never touched) and find its row blocks."""
        self.mask = mask.to(device=self.weight.device, dtype=self.weight.dtype)
        self.blocks = row_blocks(self.mask)

    def masked_weight(self) -> torch.Tensor:
        """The weight times the mask: the matrix the layer actually applies."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        blocks = self.blocks if x.dim() == 2 else None
        if not torch.amp.is_autocast_available(kind):  # e.g. the meta device: no autocast to ask about
            return _plain(x, self.weight, self.mask, self.bias, blocks)
        dtype = self.weight.dtype
        if torch.is_autocast_enabled(kind) and dtype == torch.float32:
            dtype = torch.get_autocast_dtype(kind)
        if dtype != self.weight.dtype and compiling():
            # torch.compile fuses the mask and the cast with autograd's own graph into one dense
            # matmul; measured faster in bf16 than compiling the functions below or the blocks in
            # plain ops (MADE-8000 bf16: 1.7x faster than compiled blocks, 2-core EPYC)
            return _plain(x, self.weight, self.mask, self.bias, None)
        if x.dtype not in (self.weight.dtype, dtype):
            return _plain(x, self.weight, self.mask, self.bias, blocks)
        if blocks is not None:
            return _BlockedMaskedLinearFn.apply(x, self.weight, self.mask, self.bias, dtype, blocks)
        return _MaskedLinearFn.apply(x, self.weight, self.mask, self.bias, dtype)


def _plain(x, weight, mask, bias, blocks: RowBlocks) -> torch.Tensor:
    """The layer in plain autograd ops (devices without autocast, inputs in another dtype than
    the layer computes in, and bf16 under torch.compile with `blocks` None)."""
    if blocks is None:
        return F.linear(x, weight * mask, bias)
    parts = [
        F.linear(x[:, :c], weight[r0:r1, :c] * mask[r0:r1, :c], None if bias is None else bias[r0:r1])
        for r0, r1, c in blocks
    ]
    return torch.cat(parts, 1)


class _MaskedLinearFn(torch.autograd.Function):
    """`F.linear(x, W * M, b)` computed in `dtype` (autocast's, or the weight's), with the weight
    gradient masked in place: autograd's version allocates and writes one more weight-sized tensor
    per layer and step for `grad * M` (and under autocast one more for the cast), which for wide
    layers (MADE-8000: 6.3M weights per layer) costs about as much as a small matmul."""

    @staticmethod
    def forward(ctx, x, weight, mask, bias, dtype):
        w = (weight * mask).to(dtype)
        xc = x.to(dtype)
        ctx.save_for_backward(xc, w, mask)
        ctx.has_bias, ctx.x_dtype = bias is not None, x.dtype
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(xc, w, None if bias is None else bias.to(dtype))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, w, mask = ctx.saved_tensors
        grad = grad.to(w.dtype)
        g2, x2 = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        gx = (grad @ w).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            gw = torch.mm(g2.t(), x2).to(mask.dtype).mul_(mask)
        gb = g2.sum(0).to(mask.dtype) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return gx, gw, None, gb, None


class _BlockedMaskedLinearFn(torch.autograd.Function):
    """`_MaskedLinearFn` for a 2-D input and a mask with row blocks: each block of rows is one
    matmul with the column prefix it uses, in the forward pass and both gradients (written into
    column slices of the output and of the gradients; the weight gradient is zero outside the
    blocks)."""

    @staticmethod
    def forward(ctx, x, weight, mask, bias, dtype, blocks):
        xc = x.to(dtype)
        parts = [(weight[r0:r1, :c] * mask[r0:r1, :c]).to(dtype) for r0, r1, c in blocks]
        out = xc.new_empty(xc.shape[0], weight.shape[0])
        b = None if bias is None else bias.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            for (r0, r1, c), w in zip(blocks, parts):
                if b is None:
                    torch.mm(xc[:, :c], w.t(), out=out[:, r0:r1])
                else:
                    torch.addmm(b[r0:r1], xc[:, :c], w.t(), out=out[:, r0:r1])
        ctx.save_for_backward(xc, mask, *parts)
        ctx.blocks, ctx.has_bias, ctx.x_dtype = blocks, bias is not None, x.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, mask, *parts = ctx.saved_tensors
        g = grad.to(x.dtype)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.zeros_like(x)
            for (r0, r1, c), w in zip(ctx.blocks, parts):
                gx[:, :c].addmm_(g[:, r0:r1], w)
            gx = gx.to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            gw = mask.new_empty(mask.shape)
            for r0, r1, c in ctx.blocks:
                block = gw[r0:r1, :c]
                if x.dtype == gw.dtype:
                    torch.mm(g[:, r0:r1].t(), x[:, :c], out=block)
                else:
                    block.copy_(g[:, r0:r1].t() @ x[:, :c])
                block.mul_(mask[r0:r1, :c])
                gw[r0:r1, c:].zero_()
        if ctx.has_bias and ctx.needs_input_grad[3]:
            gb = g.sum(0).to(mask.dtype)
        return gx, gw, None, gb, None, None
