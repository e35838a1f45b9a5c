"""Exactness: probabilities of all 2^n (or K^n) configurations sum to 1."""

# The contract suite (tests/contract) checks each family's tiny_config(); here: the other variants.

from __future__ import annotations

import itertools

import pytest
import torch

from chainrule.distributions import Bernoulli, Categorical
from chainrule.models import MADE
from tests.conftest import all_binary, beyond_contract, randomize, small_models

MODELS = small_models(8)


@pytest.mark.parametrize("name", beyond_contract(MODELS))
def test_binary_models_sum_to_one(name: str) -> None:
    model = MODELS[name]
    total = model.log_prob(all_binary(8)).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("n", [1, 2, 10])
def test_made_and_nade_sum_to_one_other_sizes(n: int) -> None:
    for name, model in small_models(n).items():
        total = model.log_prob(all_binary(n)).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-10), name


def test_made_single_masks_of_an_ensemble_each_sum_to_one() -> None:
    model = MODELS["made-random-orders"]
    x = all_binary(8)
    for m in range(model.num_masks):
        assert model.log_prob(x, num_masks=1 + m).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_ensemble_averages_probabilities_not_logits() -> None:
    model = MODELS["made-ensemble"]
    x = all_binary(8)
    per_mask = []
    for m in range(model.num_masks):
        model.use_mask(m)
        per_mask.append(torch.distributions.Bernoulli(logits=model.conditioner(x)).log_prob(x).sum(-1).exp())
    model.use_mask(0)
    expected = torch.stack(per_mask).mean(0)
    assert torch.allclose(model.log_prob(x).exp(), expected, atol=1e-12)


def test_categorical_made_sums_to_one() -> None:
    model = randomize(MADE(4, hidden=[12], num_values=3).double())
    x = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float64)
    assert model.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_heads_normalise() -> None:
    logits = torch.randn(5, dtype=torch.float64)
    b = Bernoulli()
    p = (
        b.log_prob(logits, torch.zeros(5, dtype=torch.float64)).exp()
        + b.log_prob(logits, torch.ones(5, dtype=torch.float64)).exp()
    )
    assert torch.allclose(p, torch.ones(5, dtype=torch.float64))
    c = Categorical(4)
    params = torch.randn(5, 4, dtype=torch.float64)
    total = sum(c.log_prob(params, torch.full((5,), v, dtype=torch.float64)).exp() for v in range(4))
    assert torch.allclose(total, torch.ones(5, dtype=torch.float64))
