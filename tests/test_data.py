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


def test_faithful_is_embedded_standardised_and_split() -> None:
    d = load_dataset("faithful")
    assert d.value_type == "continuous" and d.dim == 2
    assert len(d.train) + len(d.val) + len(d.test) == 272
    assert torch.allclose(d.train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(d.train.std(0, unbiased=False), torch.ones(2), atol=1e-5)


def test_fold_indices_partition_the_rows() -> None:
    from chainrule.data.continuous import fold_indices

    tests = []
    for fold in range(10):
        idx = fold_indices(1599, fold)
        rows = torch.cat([torch.from_numpy(idx[s]) for s in ("train", "val", "test")])
        assert sorted(rows.tolist()) == list(range(1599))
        tests.append(torch.from_numpy(idx["test"]))
    assert sorted(torch.cat(tests).tolist()) == list(range(1599))  # every row tested exactly once


def test_correlated_columns_are_dropped() -> None:
    import numpy as np

    from chainrule.data.continuous import drop_correlated

    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    x = np.stack([a, rng.normal(size=200), a + 0.01 * rng.normal(size=200)], 1)
    assert drop_correlated(x) == [0, 1]


@pytest.mark.network
def test_wine_follows_the_rnade_preprocessing() -> None:
    red, white = load_dataset("wine-red"), load_dataset("wine-white")
    assert red.dim == white.dim == 11 and red.value_type == "continuous"
    assert len(red.train) + len(red.val) + len(red.test) == 1599
    assert len(white.train) + len(white.val) + len(white.test) == 4898
    assert torch.allclose(red.train.mean(0), torch.zeros(11), atol=1e-4)
