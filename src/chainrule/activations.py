"""tanh through the sigmoid on the CPU, tanh(x) = 2 σ(2x) - 1, and the gated activation
tanh(a) σ(b) with a hand-written backward.

torch's CPU tanh (a 1-ulp vector routine) is several times slower than its sigmoid: on 2.4 million
float32 values, 3.4 ms against 0.49 ms (2 threads, AMD EPYC with AVX-512, torch 2.13,
2026-12-06), and 1.0 ms through the identity (four kernels). The gated activations of Gated PixelCNN and
the LSTM cells of PixelRNN spend much of their elementwise time in tanh, so they take it from here.
The identity costs at most 2e-7 absolute error near 0 (float32's resolution at 1/2, doubled),
far below what a gate or a cell state can resolve; the gradient is tanh's own, 1 - y².

`gated_tanh` (Gated PixelCNN, WaveNet) also writes its backward out: autograd's version of
tanh(a) σ(b) on half-precision input copies each half to float32 and back in both directions.

Other devices keep torch.tanh (fast there). The function is the same in every mode (training,
evaluation, sampling), so log-probabilities agree between them exactly.
"""

from __future__ import annotations

import torch


class _SigmoidTanh(torch.autograd.Function):
    """y = 2 σ(2x) - 1 forward; dx = dy (1 - y²) backward (aten's tanh_backward on the saved y)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2)
        y.mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(dy, y)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x): through the sigmoid on the CPU (several times faster there), torch.tanh elsewhere."""
    if x.device.type != "cpu":
        return torch.tanh(x)
    return _SigmoidTanh.apply(x)


def tanh_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) written into `out` (hand-written forward passes, no autograd): 2 σ(2x) - 1 on the CPU."""
    if x.device.type != "cpu":
        return torch.tanh(x, out=out)
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


def cell_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs, else the dtype itself: on the CPU, tanh and sigmoid are
    several times slower in bf16 than in float32 (Gated PixelCNN's gates in one bf16 training step:
    2.8x faster through float32, torch 2.13, 2026-12-05), and an LSTM's cell state would lose
    precision along a long recurrence."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def lstm_gate_scale(four: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(4 ch,) factors [1 1 1 2] for LSTM pre-activations [o, f, i, g]: σ(scale · gates) is then
    [σ(o), σ(f), σ(i), σ(2g)], and tanh(g) = 2 σ(2g) - 1, so one sigmoid serves all four gates (and
    multiplying by a float32 scale also lifts half-precision gates to float32). Made per call (a
    few microseconds; a cached tensor would make torch.compile warn about the cache)."""
    scale = torch.ones(four, dtype=dtype, device=device)
    scale[3 * (four // 4) :] = 2
    return scale


class _GatedTanh(torch.autograd.Function):
    """tanh(a) σ(b) of the halves of pre along dim 1, in float32 for half-precision input, with
    the backward written out: dpre = [dy σ(b) (1 - tanh²(a)), dy tanh(a) σ(b) (1 - σ(b))], each a
    product and aten's fused tanh/sigmoid backward (autograd's version of the same arithmetic:
    9 kernels forward, about 10 backward; these: 7 and 5, and no copies of the halves)."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor) -> torch.Tensor:
        a, b = pre.chunk(2, 1)
        cell = cell_dtype(pre.dtype)
        t = torch.empty(a.shape, dtype=cell, device=pre.device)
        torch.mul(a, 2, out=t).sigmoid_().mul_(2).sub_(1)  # tanh(a) = 2 σ(2a) - 1
        s = torch.empty_like(t).copy_(b).sigmoid_()
        out = torch.empty(a.shape, dtype=pre.dtype, device=pre.device)
        torch.mul(t, s, out=out)
        ctx.save_for_backward(t, s)
        return out

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> torch.Tensor:
        t, s = ctx.saved_tensors
        da = torch.ops.aten.tanh_backward(dy * s, t)
        db = torch.ops.aten.sigmoid_backward(dy * t, s)
        dpre = torch.cat([da, db], 1)
        return dpre.to(dy.dtype)


def gated_tanh(pre: torch.Tensor) -> torch.Tensor:
    """The gated activation tanh(a) σ(b) of pre = [a, b] split along dim 1 (Gated PixelCNN,
    WaveNet), in pre's dtype; on the CPU computed in float32 and through the sigmoid (see above)."""
    if pre.device.type != "cpu":
        a, b = pre.chunk(2, 1)
        return torch.tanh(a) * torch.sigmoid(b)
    return _GatedTanh.apply(pre)
