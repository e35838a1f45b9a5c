"""Sampling: fast == generic for the same seed, completion keeps observed values, and sample
frequencies match exp(log_prob)."""

# The contract suite (tests/contract) checks each family's tiny_config(); here: the other variants
# (orders, ensembles), shared masks, the generic completion path, and exact completion.

from __future__ import annotations

import pytest
import torch

from chainrule.errors import ChainruleError
from tests.conftest import all_binary, beyond_contract, small_models

MODELS = small_models(8)


@pytest.mark.parametrize("name", beyond_contract(MODELS))
def test_fast_sampler_equals_generic_sampler(name: str) -> None:
    model = MODELS[name]
    a = model.sample(300, generator=torch.Generator().manual_seed(7), method="fast")
    b = model.sample(300, generator=torch.Generator().manual_seed(7), method="generic")
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", beyond_contract(MODELS))
@pytest.mark.parametrize("method", ["fast", "generic"])
def test_completion_never_changes_observed_values(name: str, method: str) -> None:
    model = MODELS[name]
    g = torch.Generator().manual_seed(1)
    given = torch.bernoulli(torch.full((50, 8), 0.5, dtype=torch.float64), generator=g)
    mask = torch.rand(50, 8, generator=g) < 0.5
    out = model.sample(50, given=given, mask=mask, generator=g, method=method)
    assert torch.equal(out[mask], given[mask])
    shared = model.sample(50, given=given, mask=mask[0], generator=g, method=method)
    assert torch.equal(shared[:, mask[0]], given[:, mask[0]])


@pytest.mark.parametrize("name", ["fvsbn-order", "nade-order", "made-2layers", "made-random-orders"])
def test_sample_frequencies_match_probabilities(name: str) -> None:
    """Chi-square-style check on 2^4 configurations (4-d model so every cell has mass)."""
    model = small_models(4)[name]
    n = 40000
    x = model.sample(n, generator=torch.Generator().manual_seed(0))
    codes = (x * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=x.dtype)).sum(1).long()
    freq = torch.bincount(codes, minlength=16).double() / n
    p = model.log_prob(all_binary(4)).exp()
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() <= 5 * se + 1e-12).all(), (freq, p)


def test_completion_is_exact_when_observed_dims_come_first() -> None:
    """Observed = first half in the order: completions follow p(x_rest | x_obs)."""
    model = small_models(4)["nade"]
    given = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).repeat(40000, 1)
    mask = torch.tensor([True, True, False, False])
    x = model.sample(40000, given=given, mask=mask, generator=torch.Generator().manual_seed(2))
    codes = (x[:, 2] * 2 + x[:, 3]).long()
    freq = torch.bincount(codes, minlength=4).double() / 40000
    cand = torch.tensor([[1, 0, a, b] for a in (0, 1) for b in (0, 1)], dtype=torch.float64)
    p = model.log_prob(cand).exp()
    p = p / p.sum()
    assert torch.allclose(freq, p, atol=5 * (0.25 / 40000) ** 0.5)


def test_bad_sampling_arguments() -> None:
    model = MODELS["nade"]
    with pytest.raises(ChainruleError, match="positive integer"):
        model.sample(0)
    with pytest.raises(ChainruleError, match="both"):
        model.sample(3, given=torch.zeros(3, 8))
    with pytest.raises(ChainruleError, match="mask has shape"):
        model.sample(3, given=torch.zeros(3, 8), mask=torch.ones(5, dtype=torch.bool))


def test_ensemble_completion_follows_the_mixture_posterior() -> None:
    """Natural-order ensemble, first half observed: completions follow p(x_rest | x_obs) of the
    *mixture*, which weights each mask by how well it explains the observed part."""
    from chainrule.models import MADE
    from tests.conftest import randomize

    model = randomize(MADE(4, hidden=[12], num_masks=3).double(), std=1.5, seed=5)
    n = 60000
    given = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).repeat(n, 1)
    mask = torch.tensor([True, True, False, False])
    x = model.sample(n, given=given, mask=mask, generator=torch.Generator().manual_seed(4))
    freq = torch.bincount((x[:, 2] * 2 + x[:, 3]).long(), minlength=4).double() / n
    cand = torch.tensor([[1, 0, a, b] for a in (0, 1) for b in (0, 1)], dtype=torch.float64)
    p = model.log_prob(cand).exp()
    p = p / p.sum()
    assert torch.allclose(freq, p, atol=5 * (0.25 / n) ** 0.5), (freq, p)
