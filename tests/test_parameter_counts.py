"""Stored and free parameters: `num_parameters()` counts what a model stores, `num_free_parameters()`
what can change its likelihood; they differ where a fixed mask zeroes stored weights (FVSBN)."""

from __future__ import annotations

import pytest

from chainrule.masked_conv import MaskedConv2d
from chainrule.models import FVSBN, MADE, NADE, PixelCNN


@pytest.mark.parametrize("dim", [1, 2, 5, 784])
def test_fvsbn_free_parameters_are_the_lower_triangle_and_the_biases(dim: int) -> None:
    model = FVSBN(dim)
    assert model.num_parameters() == dim * dim + dim
    assert model.num_free_parameters() == dim * (dim - 1) // 2 + dim


def test_k_ary_fvsbn_free_parameters_are_the_blocks_below_the_diagonal() -> None:
    dim, k = 4, 3
    model = FVSBN(dim, num_values=k)
    assert model.num_free_parameters() == (dim * (dim - 1) // 2) * k * k + dim * k


def test_made_free_parameters_are_the_connections_some_mask_uses() -> None:
    one = MADE(6, hidden=[8], seed=0)
    masks = [*one.layers, one.out]
    assert one.num_free_parameters() == one.num_parameters() - sum(int((m.mask == 0).sum()) for m in masks)
    assert one.num_free_parameters() < one.num_parameters()
    ensemble = MADE(6, hidden=[8], num_masks=4, ordering="random", seed=0)
    assert one.num_free_parameters() <= ensemble.num_free_parameters() <= ensemble.num_parameters()
    assert ensemble.mask_index == 0  # counting leaves the mask in use as it was


def test_unmasked_models_have_nothing_to_leave_out() -> None:
    model = NADE(6, hidden=4)
    assert model.num_free_parameters() == model.num_parameters()


def test_masked_convolutions_leave_out_their_masked_taps() -> None:
    model = PixelCNN(**PixelCNN.tiny_config())
    zeroed = sum(int((m.mask == 0).sum()) for m in model.modules() if isinstance(m, MaskedConv2d))
    assert zeroed > 0
    assert model.num_free_parameters() == model.num_parameters() - zeroed
