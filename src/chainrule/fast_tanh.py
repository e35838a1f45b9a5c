"""tanh as 2 sigmoid(2x) - 1 on large CPU tensors, where torch's own tanh is slow.

torch's CPU tanh costs several times its sigmoid (1.2 million float32 values, one thread: 4.2 ms
against about 0.5 ms; 2026-12-06, torch 2.13, AMD EPYC), so the identity's four cheap kernels
(a product, an in-place sigmoid, a product and a difference) beat it by 2.5-3.5x. Its backward is
aten's fused tanh_backward on the saved output, as torch.tanh's. The result agrees with torch.tanh
to about 1e-7 in float32 (two roundings of the sigmoid), exactly in the limits. Small tensors and
GPUs keep torch.tanh: a sampler's few values per step pay four kernel launches for one (1.4-1.5x
slower PixelRNN sampling). Inside torch.compile the identity is written out as plain arithmetic,
which inductor fuses into one pass: its vectorised tanh costs twice its sigmoid (a compiled bf16
gate over (64, 96, 28, 28), forward: 3.5 against 1.7 ms; 2026-12-07).
`tanh_into` is the identity itself, for hand-written passes (the LSTM scans).

An earlier chainrule.activations did the same for every CPU tensor and was removed on
2026-12-06: in the Gated PixelCNN's gates it then measured 0.99-1.01x (2 threads, batch 64) and it
slowed sampling. Measured again after fit began keeping freed memory (chainrule.allocator), the
gates' tanh gave 1.064x (bf16) and 1.025x (fp32) training steps (in-process A/B, 2 threads, batch
64, idle machine); the size threshold keeps the samplers on torch.tanh.
"""

from __future__ import annotations

import torch

#: elements from which the identity pays for its extra kernels on the CPU
MIN_ELEMENTS = 1 << 15


def tanh_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) written into `out` as 2 sigmoid(2x) - 1, on any device (no autograd)."""
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


class _SigmoidTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = tanh_into(x, torch.empty_like(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """torch.tanh(x), through 2 sigmoid(2x) - 1 for large float tensors on the CPU (see above)."""
    if x.device.type != "cpu":
        return torch.tanh(x)
    if torch.compiler.is_compiling():  # inductor fuses the identity into one pass; its tanh is slow
        return 2 * torch.sigmoid(2 * x) - 1
    if x.numel() < MIN_ELEMENTS:
        return torch.tanh(x)
    return _SigmoidTanh.apply(x)
