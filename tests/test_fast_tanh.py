"""chainrule.fast_tanh.tanh: torch.tanh's values (to float32 rounding) and gradient, through
2 sigmoid(2x) - 1 on large CPU tensors; torch.tanh itself on small ones."""

from __future__ import annotations

import math

import torch

from chainrule.fast_tanh import MIN_ELEMENTS, tanh


def large(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(2 * MIN_ELEMENTS, generator=gen, dtype=torch.float64) * 4).to(dtype)


def test_values_match_torch_tanh() -> None:
    x = large(torch.float32)
    assert (tanh(x) - torch.tanh(x)).abs().max() < 3e-7
    x64 = large(torch.float64)
    assert (tanh(x64) - torch.tanh(x64)).abs().max() < 1e-15


def test_limits_and_nan() -> None:
    x = torch.zeros(MIN_ELEMENTS)
    x[:4] = torch.tensor([math.inf, -math.inf, 100.0, math.nan])
    y = tanh(x)
    assert y[:3].tolist() == [1.0, -1.0, 1.0] and math.isnan(y[3]) and bool((y[4:] == 0).all())


def test_gradient_is_tanh_backward() -> None:
    x = large(torch.float64).requires_grad_()
    upstream = torch.randn_like(x)
    (ours,) = torch.autograd.grad((tanh(x) * upstream).sum(), x)
    (theirs,) = torch.autograd.grad((torch.tanh(x) * upstream).sum(), x)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-14)


def test_small_tensors_use_torch_tanh_exactly() -> None:
    x = torch.randn(MIN_ELEMENTS - 1)
    assert torch.equal(tanh(x), torch.tanh(x))


def test_inside_torch_compile_the_identity_is_written_out(monkeypatch) -> None:
    """Inside torch.compile (seen here through `is_compiling`, without paying a compilation in the
    suite) tanh is 2 sigmoid(2x) - 1 as plain arithmetic, which inductor fuses: tanh's values and,
    through autograd, its gradient."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    x = large(torch.float32).requires_grad_()
    y = tanh(x)
    assert type(y.grad_fn).__name__.startswith("Sub")  # the "- 1" of the identity, not tanh or _SigmoidTanh
    upstream = torch.randn_like(x)
    (ours,) = torch.autograd.grad((y * upstream).sum(), x)
    (theirs,) = torch.autograd.grad((torch.tanh(x) * upstream).sum(), x)
    assert (y.detach() - torch.tanh(x.detach())).abs().max() < 3e-7
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-5)
