"""Untied NADE (the notes' NADE before weight tying): tying its weights gives tied NADE exactly,
and it has the O(D² d) parameters the notes count. The contract suite covers the rest
(normalisation, autoregressive dependencies, samplers)."""

from __future__ import annotations

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import NADE, UntiedNADE


def tied_copy(nade: NADE) -> UntiedNADE:
    """An untied NADE whose A_i are W's first i - 1 columns and c_i = c, alpha_i = V_i, b = b."""
    dim, hidden = nade.dim, nade.hidden
    untied = UntiedNADE(dim, hidden=hidden, order=nade.order).double()
    with torch.no_grad():
        untied.inputs.weight.copy_(nade.W.repeat(dim, 1))  # block i: all of W (the mask keeps x_<i)
        untied.inputs.bias.copy_(nade.c.repeat(dim))
        untied.alpha.copy_(nade.V)
        untied.b.copy_(nade.b)
    return untied


@pytest.mark.parametrize("order", [None, [3, 0, 5, 1, 4, 2]])
def test_tying_the_weights_gives_tied_nade(order) -> None:
    torch.manual_seed(0)
    nade = NADE(6, hidden=4, order=order).double()
    with torch.no_grad():
        for p in nade.parameters():
            p.normal_()
    x = torch.bernoulli(torch.full((32, 6), 0.5, dtype=torch.float64))
    torch.testing.assert_close(tied_copy(nade).log_prob(x), nade.log_prob(x))


def test_parameters_grow_as_d_times_dim_squared() -> None:
    """d D(D-1)/2 free input weights (stored: d D²), D d hidden biases, D d output weights, D biases."""
    dim, hidden = 10, 3
    model = UntiedNADE(dim, hidden=hidden)
    assert model.num_free_parameters() == hidden * dim * (dim - 1) // 2 + 2 * dim * hidden + dim
    assert model.num_parameters() == hidden * dim * dim + 2 * dim * hidden + dim
    assert NADE(dim, hidden=hidden).num_parameters() == 2 * dim * hidden + dim + hidden


def test_hidden_must_be_positive() -> None:
    with pytest.raises(ChainruleError, match="hidden must be positive"):
        UntiedNADE(4, hidden=0)
