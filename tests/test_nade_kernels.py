"""The blocked O(n·d) NADE kernel equals a direct autograd implementation, values and gradients."""

from __future__ import annotations

import pytest
import torch

from chainrule.models.nade_kernels import nade_logits


def reference_logits(x, W, c, V, b):
    xw = x[:, :, None] * W.t()[None]
    a = torch.cumsum(xw, 1) - xw + c
    return (torch.sigmoid(a) * V).sum(-1) + b


@pytest.mark.parametrize(("D", "block"), [(13, 4), (16, 16), (20, 16), (7, 1)])
def test_blocked_kernel_matches_reference(D: int, block: int) -> None:
    g = torch.Generator().manual_seed(D)
    H, B = 5, 6
    x = torch.bernoulli(torch.full((B, D), 0.5, dtype=torch.float64), generator=g).requires_grad_()
    params = [
        torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_()
        for s in [(H, D), (H,), (D, H), (D,)]
    ]
    w = torch.randn(B, D, generator=g, dtype=torch.float64)
    ref = reference_logits(x, *params)
    got = nade_logits(x, *params, block=block)
    assert torch.allclose(got, ref, atol=1e-12)
    g_ref = torch.autograd.grad((ref * w).sum(), [x, *params])
    g_got = torch.autograd.grad((got * w).sum(), [x, *params])
    for a, r in zip(g_got, g_ref):
        assert torch.allclose(a, r, atol=1e-10)


def test_compiled_kernels_match_eager_or_fall_back() -> None:
    """`compiled=True` gives the eager kernel's values (compiled, or eager after a warned fallback)."""
    g = torch.Generator().manual_seed(0)
    D, H, B = 32, 8, 4
    x = torch.bernoulli(torch.full((B, D), 0.5), generator=g)
    params = [torch.randn(*s, generator=g).requires_grad_() for s in [(H, D), (H,), (D, H), (D,)]]
    eager = nade_logits(x, *params, block=16)
    fused = nade_logits(x, *params, block=16, compiled=True)
    assert torch.allclose(eager, fused, atol=1e-5)
    (g_eager,) = torch.autograd.grad(eager.sum(), [params[0]])
    (g_fused,) = torch.autograd.grad(fused.sum(), [params[0]])
    assert torch.allclose(g_eager, g_fused, atol=1e-4)


def test_batch_chunks_give_the_same_values_and_gradients(monkeypatch) -> None:
    """A batch cut into chunks (as `plan` does for large batch x hidden) changes nothing."""
    import chainrule.models.nade_kernels as kernels

    g = torch.Generator().manual_seed(1)
    D, H, B = 13, 5, 20
    x = torch.bernoulli(torch.full((B, D), 0.5, dtype=torch.float64), generator=g)
    params = [
        torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_()
        for s in [(H, D), (H,), (D, H), (D,)]
    ]
    whole = nade_logits(x, *params, block=4)
    monkeypatch.setattr(kernels, "WORKING_SET", 8 * 4 * H)
    assert kernels.plan(B, H, 4) == (8, 4)
    chunked = nade_logits(x, *params, block=4)
    assert torch.allclose(chunked, whole, atol=1e-12)
    for a, r in zip(torch.autograd.grad(chunked.sum(), params), torch.autograd.grad(whole.sum(), params)):
        assert torch.allclose(a, r, atol=1e-10)
