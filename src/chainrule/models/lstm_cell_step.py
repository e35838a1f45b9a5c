"""One step of LSTM cells over rows of positions, as the PixelRNN scans (models/lstm_scan.py) run it:
the pure-PyTorch twins of the native kernels (chainrule.native's `lstm_cell_forward` and
`lstm_cell_backward`), which are their specification and their fallback, and the choice between
the two. Tensors are (G, R, ·): G independent recurrences (directions), R positions each."""

from __future__ import annotations

from collections.abc import Callable

import torch

from chainrule import native
from chainrule.fast_tanh import tanh_into


def cell_dtype(dtype: torch.dtype) -> torch.dtype:
    """The precision the cell runs in: float32 for half-precision pre-activations."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input  # dy σ (1 - σ), into grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # dy (1 - y²), into grad_input


def cell_forward(gates, c_prev, lo: int, hi: int, src: int, act, c, tc, h) -> None:
    """One step's LSTM cells over rows (G, R, ·) of pre-activations `gates` [o, f, i, g] (any
    float dtype): writes act = [σ(o), σ(f), σ(i), tanh(g)], c = i tanh(g) + f c_prev (rows lo..hi
    carry c_prev[:, src + r - lo]; the others start from a zero state), tc = tanh(c) and
    h = σ(o) tanh(c), all in the cell's precision. tanh is 2 σ(2x) - 1, so one sigmoid runs over
    whole rows. The specification of (and fallback for) native `lstm_cell_forward`."""
    ch = c.shape[-1]
    act.copy_(gates)
    act[..., 3 * ch :].mul_(2)
    act.sigmoid_()
    act[..., 3 * ch :].mul_(2).sub_(1)
    o, f, i, g = act.split(ch, -1)
    torch.mul(i, g, out=c)
    if c_prev is not None and hi > lo:
        c[:, lo:hi].addcmul_(f[:, lo:hi], c_prev[:, src : src + hi - lo])
    tanh_into(c, out=tc)
    torch.mul(o, tc, out=h)


def cell_backward(dh, dc, act, tc, c_prev, lo: int, hi: int, src: int, dpre, dc_prev) -> None:
    """Adjoint of `cell_forward` for one step, from dh (into h) and dc (into c from the step after):
    writes the pre-activations' gradient into `dpre` (any float dtype; the forget gate's is zero on
    rows that carry nothing) and, for carried rows, dc_prev[:, src + r - lo] = dc_total f, the
    gradient into the state carried in (`dc_prev` may be `dc` itself). Each gate's gradient is a
    product and aten's fused sigmoid or tanh backward."""
    ch = tc.shape[-1]
    o, f, i, g = act.split(ch, -1)
    grad = dpre if dpre.dtype == act.dtype else torch.empty_like(act)
    do, df, di, dg = grad.split(ch, -1)
    dcell = torch.mul(dh, o)
    _tanh_backward(dcell, tc, grad_input=dcell)
    dcell.add_(dc)
    _sigmoid_backward(torch.mul(dh, tc, out=do), o, grad_input=do)
    _sigmoid_backward(torch.mul(dcell, g, out=di), i, grad_input=di)
    _tanh_backward(torch.mul(dcell, i, out=dg), g, grad_input=dg)
    df.zero_()
    if c_prev is not None and hi > lo:
        mine, theirs = slice(lo, hi), slice(src, src + hi - lo)
        _sigmoid_backward(
            torch.mul(dcell[:, mine], c_prev[:, theirs], out=df[:, mine]), f[:, mine], grad_input=df[:, mine]
        )
        if dc_prev is not None:
            torch.mul(dcell[:, mine], f[:, mine], out=dc_prev[:, theirs])
    if grad is not dpre:
        dpre.copy_(grad)


def cells(like: torch.Tensor) -> tuple[Callable[..., None], Callable[..., None]]:
    """The cell's forward and backward step: the native C++ pass where it runs, else the above."""
    if native.available(like):
        return native.ops().lstm_cell_forward, native.ops().lstm_cell_backward
    return cell_forward, cell_backward


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """(G, ..., X) → (G, R, X): every position of each recurrence a row (a view)."""
    return t.flatten(1, -2)
