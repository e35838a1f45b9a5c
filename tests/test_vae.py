"""VAE: the importance-weighted estimate converges to the exact log p(x) (computed by
quadrature over a 1-D latent), the ELBO lies below it, and all three decoders work."""

from __future__ import annotations

import math

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import VAE
from chainrule.persistence import load, save
from tests.conftest import all_binary, randomize


def exact_log_prob(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """log ∫ p(x|z) N(z; 0, 1) dz by a fine Riemann sum over z in [-10, 10] (latent dim 1)."""
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64).unsqueeze(1)
    h = float(z[1] - z[0])
    log_lik = model.log_likelihood(model.decoder_params(z).unsqueeze(1), x)  # (Z, B)
    log_prior = -0.5 * (z**2 + math.log(2 * math.pi))
    return torch.logsumexp(log_lik + log_prior, dim=0) + math.log(h)


@pytest.fixture(scope="module")
def tiny() -> VAE:
    """Random decoder; an encoder close to the prior (a proposal with light-tailed weights, so
    the Monte Carlo standard error is trustworthy) but still depending on x."""
    model = randomize(VAE(4, latent=1, hidden=[8]).double(), std=0.8)
    with torch.no_grad():
        model.encoder[-1].weight.mul_(0.15)
        model.encoder[-1].bias.mul_(0.15)
    return model


def test_decoder_distribution_is_normalised(tiny: VAE) -> None:
    with torch.no_grad():
        assert exact_log_prob(tiny, all_binary(4)).exp().sum().item() == pytest.approx(1.0, abs=1e-9)


def test_importance_estimate_converges_to_exact_and_elbo_is_below(tiny: VAE) -> None:
    x = all_binary(4)
    torch.manual_seed(0)
    with torch.no_grad():
        exact = exact_log_prob(tiny, x)
        elbo = torch.stack([tiny.elbo(x) for _ in range(300)]).mean(0)
        est1, _ = tiny.importance_log_prob(x, k=1)
        est, se = tiny.importance_log_prob(x, k=20000, generator=torch.Generator().manual_seed(1))
    assert (elbo <= exact + 1e-3).all()
    assert ((est - exact).abs() < 5 * se + 1e-4).all()
    assert (se < 0.05).all()
    assert (est - exact).abs().mean() < (est1 - exact).abs().mean()  # k tightens the bound


@pytest.mark.parametrize(
    "likelihood,data",
    [
        ("bernoulli", torch.bernoulli(torch.full((64, 6), 0.5))),
        ("gaussian", torch.randn(64, 6)),
        ("categorical", torch.randint(0, 5, (64, 6)).float()),
    ],
)
def test_every_decoder_trains_samples_and_roundtrips(likelihood: str, data: torch.Tensor, tmp_path) -> None:
    model = VAE(6, latent=2, hidden=[16], likelihood=likelihood, num_values=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = -model.training_log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first
    samples = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (10, 6) and torch.isfinite(samples).all()
    model.eval()
    save(model, tmp_path / "m")
    again = load(tmp_path / "m")
    g = torch.Generator().manual_seed(3)
    a = model.importance_log_prob(data, k=5, generator=g)[0]
    b = again.importance_log_prob(data, k=5, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


def test_kl_warmup_scales_the_kl_term() -> None:
    model = VAE(4, latent=2, hidden=[8], kl_warmup_steps=100)
    model.on_train_step(25)
    assert model.kl_weight == 0.25
    model.on_train_step(1000)
    assert model.kl_weight == 1.0


def test_completion_keeps_observed_values_and_interpolation_shapes() -> None:
    model = VAE(6, latent=2, hidden=[8])
    given = torch.bernoulli(torch.full((5, 6), 0.5))
    mask = torch.tensor([True, True, True, False, False, False])
    out = model.sample(5, given=given, mask=mask, generator=torch.Generator().manual_seed(0), steps=5)
    assert torch.equal(out[:, :3], given[:, :3])
    assert model.interpolate(given[:1], given[1:2], steps=7).shape == (7, 6)
    assert model.reconstruct(given).shape == (5, 6)


def test_bad_input() -> None:
    model = VAE(4, latent=2, hidden=[8])
    with pytest.raises(ChainruleError, match="binary"):
        model.log_prob(torch.full((2, 4), 0.5))
    with pytest.raises(ChainruleError, match="k"):
        model.importance_log_prob(torch.zeros(2, 4), k=0)
    with pytest.raises(ChainruleError, match="likelihood"):
        VAE(4, likelihood="poisson")
