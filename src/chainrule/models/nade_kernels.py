"""O(n·d) NADE log-likelihood and gradients, computed in blocks of dimensions.

The naive vectorised NADE materialises B×D×H pre-activations (hundreds of MB per batch) and is
memory-bound. Here dimensions are processed `block` at a time: the running pre-activation at
each block start comes from one batched matmul + cumsum, and within a block a small
strictly-lower-triangular matmul adds the in-block terms. Backward recomputes each block's
hidden units (nothing B×D×H is stored) and accumulates the analytic NADE gradient.

`compiled=True` fuses each block's elementwise work with `torch.compile` (needs a C++ compiler;
falls back to eager if compilation fails, through `chainrule.compiling.compiled_or_eager`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from chainrule.compiling import compiled_or_eager


def _block_forward(a, xb, wb, vb, tril):
    """Logits (B, k) of one block, without the output bias."""
    pre = a.unsqueeze(1) + torch.einsum("bij,hj->bih", xb.unsqueeze(1) * tril, wb)
    return (torch.sigmoid(pre) * vb).sum(-1)


def _block_backward(a, xb, wb, vb, tril, dl, g, need_x: bool):
    """Gradients for one block; `g` is dLoss/d(pre-activation at the block's end), summed.
    With `need_x`, also the gradient w.r.t. the block's inputs (else None)."""
    xl = xb.unsqueeze(1) * tril
    h = torch.sigmoid(a.unsqueeze(1) + torch.einsum("bij,hj->bih", xl, wb))
    gv = torch.einsum("bi,bih->ih", dl, h)
    da = h * (1 - h) * (dl.unsqueeze(-1) * vb)
    gw = torch.einsum("bij,bih->hj", xl, da) + torch.einsum("bj,bh->hj", xb, g)
    gx = None
    if need_x:
        gx = g @ wb + (torch.einsum("bih,hj->bij", da, wb) * tril).sum(1)
    return gv, gw, g + da.sum(1), gx


_COMPILED: dict[str, Callable] = {}


def _kernels(compiled: bool):
    if not compiled:
        return _block_forward, _block_backward
    if "fwd" not in _COMPILED:
        _COMPILED["fwd"] = compiled_or_eager(_block_forward, "the NADE kernels")
        _COMPILED["bwd"] = compiled_or_eager(_block_backward, "the NADE kernels")
    return _COMPILED["fwd"], _COMPILED["bwd"]


def _pad(x, W, V, block):
    D = x.shape[1]
    pad = (-D) % block
    if pad:
        x = F.pad(x, (0, pad))
        W = F.pad(W, (0, pad))
        V = F.pad(V, (0, 0, 0, pad))
    return x, W, V, D + pad


def _block_starts(x, W, c, block):
    """Pre-activation at the start of every block: (num_blocks, B, H)."""
    B, Dp = x.shape
    H = W.shape[0]
    nb = Dp // block
    xb = x.view(B, nb, block).transpose(0, 1)
    wb = W.view(H, nb, block).transpose(0, 1)
    inc = torch.bmm(xb, wb.transpose(1, 2))
    return torch.cumsum(inc, 0) - inc + c


class NadeLogits(torch.autograd.Function):
    """logits[b, i] = b_i + V_i · sigmoid(c + W[:, <i] x[b, <i])  (natural order)."""

    @staticmethod
    def forward(ctx, x, W, c, V, b, block: int, compiled: bool):
        D = x.shape[1]
        xp, Wp, Vp, Dp = _pad(x, W, V, block)
        starts = _block_starts(xp, Wp, c, block)
        tril = torch.ones(block, block, dtype=x.dtype, device=x.device).tril(-1)
        fwd, _ = _kernels(compiled)
        logits = torch.empty(x.shape[0], Dp, dtype=x.dtype, device=x.device)
        for i in range(Dp // block):
            s = slice(i * block, (i + 1) * block)
            logits[:, s] = fwd(starts[i], xp[:, s], Wp[:, s], Vp[s], tril)
        ctx.save_for_backward(xp, Wp, Vp, starts, tril)
        ctx.meta = (D, block, compiled)
        return logits[:, :D] + b

    @staticmethod
    def backward(ctx, dlogits):
        xp, Wp, Vp, starts, tril = ctx.saved_tensors
        D, block, compiled = ctx.meta
        _, bwd = _kernels(compiled)
        B, Dp = xp.shape
        dl = F.pad(dlogits, (0, Dp - D)) if Dp > D else dlogits.contiguous()
        gW = torch.empty_like(Wp)
        gV = torch.empty_like(Vp)
        need_x = ctx.needs_input_grad[0]
        gx = torch.empty_like(xp) if need_x else None
        g = torch.zeros_like(starts[0])
        for i in range(Dp // block - 1, -1, -1):
            s = slice(i * block, (i + 1) * block)
            gv, gw, g, gxb = bwd(starts[i], xp[:, s], Wp[:, s], Vp[s], tril, dl[:, s].contiguous(), g, need_x)
            gV[s] = gv
            gW[:, s] = gw
            if need_x:
                gx[:, s] = gxb
        gx = gx[:, :D] if need_x else None
        return gx, gW[:, :D], g.sum(0), gV[:D], dlogits.sum(0), None, None


# Elements of one block's (rows x block x H) hidden units: 64 x 16 x 500 floats (2 MB) stay in a
# core's cache; twice that, the kernel turns memory-bound and batch 256 ran at 0.7x the per-image
# speed of batch 128 (measured on 2-core AMD EPYC, hidden 500, eager and compiled).
WORKING_SET = 64 * 16 * 500
BLOCK = 16


def plan(batch: int, hidden: int, block: int | None = None) -> tuple[int, int]:
    """(rows per chunk, dimensions per block) for a batch: the batch is cut into chunks whose
    block working set (rows x block x hidden) fits `WORKING_SET`, so the time per example does not
    grow with the batch size."""
    block = BLOCK if block is None else int(block)
    rows = max(8, WORKING_SET // max(block * hidden, 1))
    return min(batch, rows), block


def nade_logits(x, W, c, V, b, block: int | None = None, compiled: bool = False) -> torch.Tensor:
    """NADE logits for a batch, O(B·D·H) time and O(rows·block·H) extra memory; `block` None:
    chosen with the batch chunking by `plan`."""
    rows, block = plan(x.shape[0], W.shape[0], block)
    if rows >= x.shape[0]:
        return NadeLogits.apply(x, W, c, V, b, block, compiled)
    return torch.cat([NadeLogits.apply(part, W, c, V, b, block, compiled) for part in x.split(rows)])
