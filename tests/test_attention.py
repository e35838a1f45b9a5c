"""The written-out causal attention used when training under bf16 autocast on the CPU (softmax in
bf16 with float32 accumulation, the scale folded into q): the same attention and gradients as
PyTorch's fused float32 kernel up to bf16 rounding, and causal; rotary positions in bf16 agree
with the float32 rotation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chainrule.nn import apply_rotary, causal_attention, rotary_tables


def qkv(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 16, 8, generator=g, requires_grad=True) for _ in range(3)]


def test_training_path_matches_the_fused_kernel_and_is_causal() -> None:
    q, k, v = qkv()
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = causal_attention(q, k, v, 0.0)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=3e-2, atol=3e-2)
    # position 5's output must not depend on keys or values after it
    grads = torch.autograd.grad(got[:, :, 5].float().sum(), [k, v])
    for grad in grads:
        assert torch.all(grad[:, :, 6:] == 0) and grad[:, :, :6].abs().sum() > 0


def test_training_path_gradients_match_the_float32_kernel() -> None:
    """Gradients of a loss through the bf16 path against the fused float32 kernel's, relative to
    their size (bf16 keeps 8 bits: a few parts in a thousand per element, more after sums)."""
    q, k, v = (t.detach().repeat(1, 1, 8, 8).requires_grad_() for t in qkv(2))  # L 128, head 64
    target = torch.randn(q.shape[:-1] + (v.shape[-1],), generator=torch.Generator().manual_seed(3))
    want = torch.autograd.grad(
        (F.scaled_dot_product_attention(q, k, v, is_causal=True) * target).sum(), [q, k, v]
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = causal_attention(q, k, v, 0.0)
    got = torch.autograd.grad((out.float() * target).sum(), [q, k, v])
    for g, w in zip(got, want):
        assert torch.isfinite(g).all()
        assert float((g - w).norm() / w.norm()) < 2e-2


def test_without_autocast_or_gradients_the_fused_kernel_is_used_exactly() -> None:
    q, k, v = qkv(1)
    with torch.no_grad():
        torch.testing.assert_close(
            causal_attention(q, k, v, 0.0), F.scaled_dot_product_attention(q, k, v, is_causal=True)
        )


def test_rotary_in_bf16_agrees_with_float32() -> None:
    cos, sin = rotary_tables(0, 16, 8)
    cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
    x = torch.randn(2, 16, 8)
    full = apply_rotary(x, cos, sin)
    half = apply_rotary(x.bfloat16(), cos, sin)
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, rtol=2e-2, atol=2e-2)
    assert apply_rotary(x.double(), cos, sin).dtype == torch.float64
