"""chainrule.dropout: the CPU dropout whose mask comes from 16-bit lanes of random words."""

from __future__ import annotations

import pytest
import torch

from chainrule.dropout import Dropout, dropout, quantised_rate
from chainrule.models.base import build_model


def test_eval_mode_and_rate_zero_return_the_input_itself() -> None:
    x = torch.randn(5, 7)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0) is x
    layer = Dropout(0.3).eval()
    assert layer(x) is x


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_scale(p: float) -> None:
    """About p of the elements are zeroed (within 5 binomial standard deviations), the rest
    scaled by 1 / (1 - q) for the rate q actually used, so the mean is kept."""
    torch.manual_seed(0)
    n = 1 << 20
    x = torch.ones(n)
    y = dropout(x, p)
    q = quantised_rate(p)
    assert abs(q - p) <= 0.5 / 65536
    dropped = float((y == 0).double().mean())
    assert abs(dropped - q) < 5 * (q * (1 - q) / n) ** 0.5
    assert torch.allclose(y[y != 0], torch.tensor(1 / (1 - q)))
    assert abs(float(y.double().mean()) - 1) < 5 * (q / (1 - q) / n) ** 0.5


def test_neighbouring_elements_are_independent() -> None:
    """Four elements share a 64-bit word: their keep indicators must not be correlated."""
    torch.manual_seed(1)
    keep = (dropout(torch.ones(1 << 20), 0.5) != 0).double().view(-1, 4)
    corr = torch.corrcoef(keep.T)
    off_diagonal = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.01


def test_gradient_is_the_mask_times_the_scale_and_seeds_fix_the_mask() -> None:
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(5)
    y = dropout(x, 0.25)
    y.sum().backward()
    scale = 1 / (1 - quantised_rate(0.25))
    torch.testing.assert_close(x.grad, (y != 0).float() * scale)
    torch.manual_seed(5)
    assert torch.equal(dropout(x.detach(), 0.25), y.detach())


def test_low_precision_inputs_keep_their_dtype_and_an_unrounded_scale() -> None:
    """bf16 values are multiplied by the float scale and rounded once (a bf16 scale would be
    1.109375 for p = 0.1: a 0.16 % bias on every kept value)."""
    torch.manual_seed(2)
    x = torch.randn(4096).bfloat16()
    y = dropout(x, 0.1)
    assert y.dtype == torch.bfloat16
    kept = y != 0
    scale = 1 / (1 - quantised_rate(0.1))
    assert torch.equal(y[kept], (x[kept].float() * scale).bfloat16())


def test_a_transformer_with_dropout_is_random_in_training_only() -> None:
    torch.manual_seed(0)
    model = build_model("transformer", num_values=5, d_model=16, layers=2, heads=2, block_size=8, dropout=0.2)
    x = torch.randint(0, 5, (3, 8))
    model.train()
    assert not torch.equal(model.log_prob(x), model.log_prob(x))
    model.eval()
    torch.testing.assert_close(model.log_prob(x), model.log_prob(x), rtol=0, atol=0)


def test_rates_outside_0_1_are_refused_and_a_rate_near_1_drops_everything() -> None:
    """As `F.dropout`: p outside [0, 1] is a ValueError, p = 1 (or a rate that rounds to it)
    zeroes every element, with a zero gradient rather than an infinite scale."""
    x = torch.randn(100, requires_grad=True)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            dropout(x, bad)
    for p in (1.0, 1 - 0.1 / 65536):
        y = dropout(x, p)
        assert torch.equal(y, torch.zeros(100))
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.equal(g, torch.zeros(100))
