"""The gated activation tanh(a) * sigmoid(b) of a pre-activation's two halves a and b (van den
Oord et al. 2016), as the Gated PixelCNN's layers use it.

On the CPU, in float32 and bfloat16, it is one C++ pass forward and one backward
(`chainrule.native`: `gated_tanh_forward`, `gated_tanh_backward`), eager and inside torch.compile
graphs alike (a custom operator with a fake implementation and an autograd formula). The gates are
the largest elementwise cost of a Gated PixelCNN training step: against inductor's fused version
of `reference` the passes are 1.4-1.6x faster (bf16 forward 1.13 against 1.77 ms on (64, 96, 28,
28), 2 threads), and the recipe's bf16 training step at 2 threads about 1.06-1.09x compiled (with
the padded variant) and 1.18-1.24x eager (measured without it) (separate processes alternating,
2026-12-08; at one thread the compiled step gained nothing). Under autograd the forward pass also
writes the gate's slopes in a and b (`gated_tanh_forward_with_slopes`), which the backward
multiplies the gradient by: one memory pass, where recomputing tanh and sigmoid from the saved
pre-activations cost as much as the forward (bf16, (50176, 96), 2 threads: forward 1.25 -> 1.74
ms, backward 1.64 -> 0.79, 2.90 -> 2.53 ms a gate; the slopes take the saved pre-activations'
memory). Elsewhere (other devices and dtypes, `CHAINRULE_NATIVE=0`, no compiler) it runs
`reference`, the specification the kernels are tested against. The gradient is first-order only
(no double backward), as training and the input-gradient tasks need.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from chainrule import native
from chainrule.fast_tanh import tanh

#: the dtypes the C++ passes take (they compute in float32)
NATIVE_DTYPES = (torch.float32, torch.bfloat16)


def reference(pre: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """tanh(a) * sigmoid(b) of the two halves of `pre` along `dim`, in PyTorch operations (tanh:
    `fast_tanh`; bf16 and fp16 through float32, several times faster on the CPU than their own
    tanh and sigmoid)."""
    a, b = pre.chunk(2, dim)
    if pre.device.type == "cpu" and pre.dtype in (torch.bfloat16, torch.float16):
        return (tanh(a.float()) * torch.sigmoid(b.float())).to(pre.dtype)
    return tanh(a) * torch.sigmoid(b)


def gated_tanh(
    pre: torch.Tensor, dim: int = 1, pads: tuple[int, int, int, int] | None = None
) -> torch.Tensor:
    """tanh(a) * sigmoid(b) of the two halves a, b of `pre` along `dim` (the result has half its
    size there), through the C++ passes where they run. `pads` (left, right, top, bottom, as
    F.pad's) zero-pads a 4D (N, 2C, H, W) map's result, which the C++ pass writes in place: the
    Gated PixelCNN's vertical stack, whose next convolution reads its map padded."""
    if pads is not None and (pre.dim() != 4 or dim not in (1, -3)):
        raise ValueError("gated_tanh pads a 4D (N, 2C, H, W) map along dim 1 only")
    size = pre.shape[dim]
    fits = pre.device.type == "cpu" and pre.dtype in NATIVE_DTYPES and not size % 2 and pre.numel()
    if not (fits and _native_ready()):
        return reference(pre, dim) if pads is None else F.pad(reference(pre, 1), pads)
    ops = torch.ops.chainrule_native
    training = torch.is_grad_enabled() and pre.requires_grad  # then the pass also writes the slopes
    if pads is not None:
        left, right, top, bottom = pads
        pre = pre.contiguous(memory_format=torch.channels_last)
        if training:
            return ops.gated_tanh_forward_padded_with_slopes(pre, top, bottom, left, right)[0]
        return ops.gated_tanh_forward_padded(pre, top, bottom, left, right)
    last = pre.movedim(dim, -1)  # a channels-last map's channels are already its last axis
    rows = last.contiguous().view(-1, size)
    out = ops.gated_tanh_forward_with_slopes(rows)[0] if training else ops.gated_tanh_forward(rows)
    return out.view(*last.shape[:-1], size // 2).movedim(-1, dim)


@torch.compiler.assume_constant_result  # decided once, outside any graph
def _native_ready() -> bool:
    return _registered()


@functools.cache
def _registered() -> bool:
    """Build the kernels and give the operators their fake implementations and gradients, once."""
    if not native.built():
        return False
    name = "chainrule_native::gated_tanh_"
    for op, fake in (
        ("forward", _fake_forward),
        ("forward_with_slopes", _fake_forward_with_slopes),
        ("backward", _fake_backward),
        ("forward_padded", _fake_forward_padded),
        ("forward_padded_with_slopes", _fake_forward_padded_with_slopes),
        ("backward_padded", _fake_backward_padded),
    ):
        torch.library.register_fake(name + op)(fake)
    torch.library.register_autograd(name + "forward_with_slopes", _backward, setup_context=_save_slopes)
    torch.library.register_autograd(
        name + "forward_padded_with_slopes", _backward_padded, setup_context=_save_slopes_and_pads
    )
    return True


def _fake_forward(pre: torch.Tensor) -> torch.Tensor:
    return pre.new_empty(pre.shape[0], pre.shape[1] // 2)


def _fake_forward_with_slopes(pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _fake_forward(pre), torch.empty_like(pre)


def _fake_backward(grad: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(slopes)


def _fake_forward_padded(pre: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    b, two_c, h, w = pre.shape
    out = pre.new_empty(b, two_c // 2, top + h + bottom, left + w + right)
    return out.contiguous(memory_format=torch.channels_last)


def _fake_forward_padded_with_slopes(
    pre: torch.Tensor, top: int, bottom: int, left: int, right: int
) -> tuple[torch.Tensor, torch.Tensor]:
    out = _fake_forward_padded(pre, top, bottom, left, right)
    return out, torch.empty_like(pre, memory_format=torch.channels_last)


def _fake_backward_padded(grad: torch.Tensor, slopes: torch.Tensor, top: int, left: int) -> torch.Tensor:
    return torch.empty_like(slopes, memory_format=torch.channels_last)


def _save_slopes(ctx, inputs: tuple[torch.Tensor], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])


def _backward(ctx, grad: torch.Tensor, _slopes_grad: torch.Tensor | None) -> torch.Tensor:
    (slopes,) = ctx.saved_tensors
    return torch.ops.chainrule_native.gated_tanh_backward(grad.contiguous(), slopes)


def _save_slopes_and_pads(ctx, inputs: tuple, output: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, top, _, left, _ = inputs
    _save_slopes(ctx, inputs, output)
    ctx.top, ctx.left = top, left


def _backward_padded(ctx, grad: torch.Tensor, _slopes_grad: torch.Tensor | None):
    (slopes,) = ctx.saved_tensors
    grad = grad.contiguous(memory_format=torch.channels_last)
    dpre = torch.ops.chainrule_native.gated_tanh_backward_padded(grad, slopes, ctx.top, ctx.left)
    return dpre, None, None, None, None
