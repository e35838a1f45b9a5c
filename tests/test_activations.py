"""chainrule.activations: tanh through the sigmoid agrees with torch.tanh, values and gradients."""

from __future__ import annotations

import pytest
import torch

from chainrule.activations import tanh, tanh_into


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
