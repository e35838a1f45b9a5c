"""Datasets: fixed splits, value ranges, and the fixed binarization of MNIST."""

from __future__ import annotations

import pytest
import torch

from chainrule.data import load_dataset


def test_digits_views() -> None:
    b = load_dataset("digits")
    assert (b.train.shape, b.val.shape, b.test.shape) == ((1257, 64), (270, 64), (270, 64))
    assert set(b.train.unique().tolist()) == {0.0, 1.0}
    k = load_dataset("digits-17")
    assert k.num_values == 17 and k.train.max() == 16
    assert torch.equal(load_dataset("digits").test, b.test)  # fixed split


def test_bars_is_binary_and_fixed() -> None:
    a, b = load_dataset("bars-3"), load_dataset("bars-3")
    assert torch.equal(a.train, b.train) and a.dim == 9


@pytest.mark.network
def test_binarized_mnist_split_and_fixed_binarization() -> None:
    d = load_dataset("binarized-mnist")
    assert d.train.shape == (50000, 784) and d.val.shape == (10000, 784) and d.test.shape == (10000, 784)
    assert d.dynamic_binarization and d.train.min() >= 0 and d.train.max() <= 1
    assert set(d.test.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(d.test, load_dataset("binarized-mnist").test)
    assert torch.bincount(d.labels["test"]).tolist()[0] == 980  # official test-set class count
