"""chainrule.activations: tanh through the sigmoid agrees with torch.tanh, and the gated activation
with its autograd formulation, in values and gradients."""

from __future__ import annotations

import pytest
import torch

from chainrule.activations import gated_tanh, tanh, tanh_into


def grid() -> torch.Tensor:
    """Values across tanh's range: the linear part, the bend, saturation, and exact 0."""
    return torch.cat([torch.linspace(-30, 30, 20_001), torch.tensor([0.0, 1e-30, -1e-30, 80.0, -80.0])])


def test_values_agree_with_torch_tanh_within_float32_resolution() -> None:
    x = grid()
    exact = torch.tanh(x.double())
    assert (tanh(x).double() - exact).abs().max() < 3e-7
    assert tanh(torch.tensor([40.0, -40.0])).tolist() == [1.0, -1.0]  # saturates exactly


def test_double_precision_is_exact_to_double_rounding() -> None:
    x = grid().double()
    assert torch.allclose(tanh(x), torch.tanh(x), rtol=0, atol=1e-15)


def test_gradient_is_one_minus_square() -> None:
    x = grid().double().requires_grad_()
    (g,) = torch.autograd.grad(tanh(x).sum(), x)
    assert torch.allclose(g, 1 - torch.tanh(x.detach()) ** 2, rtol=0, atol=1e-15)
    assert torch.autograd.gradcheck(tanh, (torch.randn(12, dtype=torch.double, requires_grad=True),))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_into_writes_the_same_values_into_a_view(dtype: torch.dtype) -> None:
    x = grid().to(dtype)
    out = torch.zeros(2, x.numel(), dtype=dtype)
    tanh_into(x, out[1])
    assert torch.equal(out[1], tanh(x)) and not out[0].any()


def test_nan_stays_nan() -> None:
    assert tanh(torch.tensor([float("nan")])).isnan().all()


def autograd_gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(a) σ(b) through autograd, in float32 for bf16 input (what gated_tanh computes)."""
    a, b = pre.chunk(2, 1)
    if pre.dtype == torch.bfloat16:
        return (tanh(a.float()) * torch.sigmoid(b.float())).to(pre.dtype)
    return tanh(a) * torch.sigmoid(b)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 8), (2, 6, 4, 5)])
def test_gated_tanh_matches_autograd(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    pre = (torch.randn(shape, generator=gen) * 3).to(dtype).requires_grad_()
    upstream = torch.randn(shape[0], shape[1] // 2, *shape[2:], generator=gen).to(dtype)
    ours, reference = gated_tanh(pre), autograd_gate(pre)
    tol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 1e-2}[dtype]
    assert ours.dtype == dtype and torch.allclose(ours, reference, rtol=0, atol=tol)
    (g_ours,) = torch.autograd.grad((ours * upstream).sum(), pre)
    (g_ref,) = torch.autograd.grad((reference * upstream).sum(), pre)
    assert g_ours.dtype == dtype
    assert torch.allclose(g_ours.double(), g_ref.double(), rtol=0, atol=10 * tol)


def test_gated_tanh_compiles_without_graph_breaks() -> None:
    """The recipes train with torch.compile: the gate must trace as one graph."""
    pre = torch.randn(2, 4, 3, 3, requires_grad=True)
    explained = torch._dynamo.explain(lambda p: gated_tanh(p).sum())(pre)
    assert explained.graph_break_count == 0
