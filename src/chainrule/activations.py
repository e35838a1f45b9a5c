"""tanh through the sigmoid on the CPU, tanh(x) = 2 σ(2x) - 1, for PixelRNN's LSTM cells.

torch's CPU tanh (a 1-ulp vector routine) is several times slower than its sigmoid: on 2.4 million
float32 values, 3.4 ms against 0.49 ms (2 threads, AMD EPYC with AVX-512, torch 2.13,
2026-12-06), and 1.0 ms through the identity (four kernels). The identity costs at most 2e-7
absolute error near 0 (float32's resolution at 1/2, doubled), far below what a gate or a cell state
can resolve; the gradient is tanh's own, 1 - y².

In a training step the gain is smaller, as the tensors are smaller and other elementwise work
dominates (in-process A/B, 2 threads, batch 64, 2026-12-06): the Row LSTM's scan (`lstm_scan`)
trains 2 % faster with it, and 4-10 % faster with one sigmoid for all four gates
(`lstm_gate_scale`) and aten's fused backward; the Diagonal BiLSTM's step-by-step `lstm_cell` is
within the noise (x0.96-1.02), and keeps the same arithmetic as the scan, so that the Row LSTM's
fast sampler (`lstm_cell`) and its generic one (the scan) agree exactly. Gated PixelCNN's
tanh(a) σ(b) gained nothing from it (x0.99-1.01), and a hand-written backward for that gate lost
1-9 % (more kernels than autograd's in fp32), so it keeps torch.tanh.

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
