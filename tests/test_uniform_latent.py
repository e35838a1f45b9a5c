"""The uniform-latent model Z ~ Uniform(a, b), X | Z ~ N(Z, sigma^2): exact density (integrates to
1, equals the integral over z of the joint), stable tails, sampling, exact completion, and
maximum-likelihood recovery of (a, b, sigma); and the `Uniform` distribution it uses."""

from __future__ import annotations

import math

import pytest
import torch

from chainrule.distributions import Uniform
from chainrule.errors import ChainruleError
from chainrule.models import MODEL_REGISTRY, UniformLatent
from chainrule.models.uniform_latent import log_ndtr_difference

F64 = torch.float64


def joint_by_quadrature(model: UniformLatent, x: torch.Tensor, points: int = 20001) -> torch.Tensor:
    """log of the integral over z in [a, b] of Uniform(z; a, b) prod_j N(x_j; z, sigma^2)."""
    a, b, s = (float(v) for v in model.parameters_dict().values())
    z = torch.linspace(a, b, points, dtype=F64)
    log_joint = (
        -0.5 * ((x[:, None, :] - z[None, :, None]) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))
    ).sum(-1)
    return torch.log(torch.trapezoid(log_joint.exp(), z, dim=1)) - math.log(b - a)


@pytest.mark.parametrize("low, high, sigma", [(-1.0, 2.0, 0.3), (0.0, 1.0, 0.01), (5.0, 5.5, 2.0)])
def test_density_integrates_to_one_in_1d(low, high, sigma) -> None:
    model = UniformLatent(1, low, high, sigma).double()
    t = torch.linspace(low - 12 * sigma, high + 12 * sigma, 400001, dtype=F64)
    with torch.no_grad():
        mass = torch.trapezoid(model.log_prob(t[:, None]).exp(), t)
    assert abs(mass.item() - 1) < 1e-6


def test_density_integrates_to_one_in_2d() -> None:
    model = UniformLatent(2, -1.0, 2.0, 0.3).double()
    t = torch.linspace(-3.5, 4.5, 801, dtype=F64)
    with torch.no_grad():
        dens = model.log_prob(torch.cartesian_prod(t, t)).exp().reshape(801, 801)
    assert abs(torch.trapezoid(torch.trapezoid(dens, t, dim=1), t).item() - 1) < 1e-4


@pytest.mark.parametrize("dim", [1, 3])
def test_density_is_the_integral_of_the_joint_over_z(dim: int) -> None:
    model = UniformLatent(dim, -1.0, 2.0, 0.4).double()
    x = torch.randn(10, dim, generator=torch.Generator().manual_seed(0), dtype=F64) * 1.5 + 0.5
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x), joint_by_quadrature(model, x), atol=1e-6)


def test_one_dimensional_formula_of_the_notes() -> None:
    """p(x) = [Phi((b - x) / sigma) - Phi((a - x) / sigma)] / (b - a)."""
    a, b, s = -1.0, 2.0, 0.3
    model = UniformLatent(1, a, b, s).double()
    x = torch.linspace(-3, 4, 71, dtype=F64)
    phi = torch.special.ndtr
    expected = torch.log((phi((b - x) / s) - phi((a - x) / s)) / (b - a))
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x[:, None]), expected, atol=1e-10)


def test_far_tails_are_finite_and_match_the_asymptote() -> None:
    """Far outside [a, b] the direct formula underflows to log(0); the log-space one does not."""
    model = UniformLatent(1, 0.0, 1.0, 0.1).double()
    x = torch.tensor([[-8.0], [9.0], [40.0]], dtype=F64)
    with torch.no_grad():
        logp = model.log_prob(x)
    assert torch.isfinite(logp).all()
    # x above b: p(x) ~ Phi((b - x)/s) / (b - a) with the normal tail log Phi(-u) ~ -u^2/2 - log(u sqrt(2 pi))
    u = (x[1:, 0] - 1.0) / 0.1
    assert torch.allclose(logp[1:], -(u**2) / 2 - torch.log(u * math.sqrt(2 * math.pi)), rtol=1e-3)


def test_log_ndtr_difference_agrees_with_the_direct_formula() -> None:
    hi = torch.tensor([0.5, 3.0, -1.0, 6.0, 2.0], dtype=F64)
    lo = torch.tensor([-0.5, 2.0, -3.0, 5.0, -2.0], dtype=F64)
    direct = torch.log(torch.special.ndtr(hi) - torch.special.ndtr(lo))
    assert torch.allclose(log_ndtr_difference(hi, lo), direct, rtol=1e-9)
    assert torch.isfinite(log_ndtr_difference(torch.tensor([41.0]), torch.tensor([40.0]))).all()


def test_sample_moments() -> None:
    a, b, s = -1.0, 2.0, 0.3
    x = UniformLatent(1, a, b, s).double().sample(200_000, generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - (a + b) / 2) < 0.01
    assert abs(x.var().item() - ((b - a) ** 2 / 12 + s**2)) < 0.01


def test_shared_latent_makes_coordinates_correlated() -> None:
    x = UniformLatent(2, -1.0, 2.0, 0.3).sample(50_000, generator=torch.Generator().manual_seed(0))
    cov = torch.cov(x.T)
    assert abs(cov[0, 1].item() - 9 / 12) < 0.03  # Cov(X1, X2) = Var(Z) = (b - a)^2 / 12


def test_fit_recovers_the_parameters() -> None:
    truth = UniformLatent(1, -1.0, 2.0, 0.3)
    x = truth.sample(5000, generator=torch.Generator().manual_seed(0))
    fitted = UniformLatent(1).double().fit(x).parameters_dict()
    assert abs(fitted["low"] - -1.0) < 0.05 and abs(fitted["high"] - 2.0) < 0.05
    assert abs(fitted["sigma"] - 0.3) / 0.3 < 0.05
    # the MLE scores the data at least as well as the truth
    with torch.no_grad():
        assert (
            UniformLatent(1, **fitted).double().log_prob(x.double()).mean()
            >= truth.double().log_prob(x.double()).mean() - 1e-9
        )


def test_fit_in_several_dimensions() -> None:
    x = UniformLatent(4, 0.0, 3.0, 0.5).sample(3000, generator=torch.Generator().manual_seed(1))
    fitted = UniformLatent(4).double().fit(x).parameters_dict()
    assert abs(fitted["low"] - 0.0) < 0.1 and abs(fitted["high"] - 3.0) < 0.1
    assert abs(fitted["sigma"] - 0.5) < 0.02


def test_gradient_training_raises_the_likelihood() -> None:
    x = UniformLatent(1, -1.0, 2.0, 0.3).sample(2000, generator=torch.Generator().manual_seed(0))
    model = UniformLatent(1, 0.0, 1.0, 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    best = UniformLatent(1).double().fit(x).log_prob(x.double()).mean().item()
    for _ in range(500):
        loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.log_prob(x).mean().item() > best - 0.005  # gradient ascent reaches the MLE
    assert abs(model.parameters_dict()["sigma"] - 0.3) < 0.05


def test_completion_draws_from_the_exact_posterior() -> None:
    """E[x_2 | x_1 = 2.5] = E[z | x_1 = 2.5], computed by quadrature over z."""
    model = UniformLatent(2, -1.0, 2.0, 0.3).double()
    z = torch.linspace(-1, 2, 20001, dtype=F64)
    w = torch.exp(-0.5 * ((2.5 - z) / 0.3) ** 2)
    expected = (torch.trapezoid(w * z, z) / torch.trapezoid(w, z)).item()
    n = 40_000
    given = torch.tensor([[2.5, float("nan")]], dtype=F64).expand(n, 2)
    out = model.sample(
        n, given=given, mask=torch.tensor([True, False]), generator=torch.Generator().manual_seed(0)
    )
    assert torch.all(out[:, 0] == 2.5)
    stderr = out[:, 1].std().item() / math.sqrt(n)
    assert abs(out[:, 1].mean().item() - expected) < 4 * stderr


def test_completion_with_nothing_observed_and_far_observations() -> None:
    model = UniformLatent(3, 0.0, 1.0, 0.05)
    given = torch.full((5, 3), float("nan"))
    out = model.sample(5, given=given, mask=torch.zeros(3, dtype=torch.bool))
    assert torch.isfinite(out).all()
    far = model.sample(5, given=torch.full((5, 3), 100.0), mask=torch.tensor([True, True, False]))
    assert torch.isfinite(far).all() and (far[:, 2] < 2).all()  # z sits at b = 1


def test_registered_with_capabilities() -> None:
    assert MODEL_REGISTRY["uniform-latent"] is UniformLatent
    caps = UniformLatent(2).capabilities()
    assert caps["value_type"] == "continuous" and caps["num_values"] == 0
    assert caps["exact_log_prob"] and caps["exact_completion"]


@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 0}, {"low": 1.0, "high": 1.0}, {"low": 2.0, "high": 1.0}, {"sigma": 0.0}, {"sigma": math.inf}],
)
def test_bad_parameters_are_refused(kwargs) -> None:
    with pytest.raises(ChainruleError):
        UniformLatent(**kwargs)


def test_uniform_distribution() -> None:
    head = Uniform()
    params = torch.tensor([[-1.0, 2.0]]).expand(4, 2)
    x = torch.tensor([-1.5, -1.0, 0.5, 2.5])
    logp = head.log_prob(params, x)
    assert torch.isneginf(logp[0]) and torch.isneginf(logp[3])
    assert torch.allclose(logp[1:3], torch.full((2,), -math.log(3.0)))
    draws = head.sample(torch.tensor([[-1.0, 2.0]]).expand(10_000, 2), torch.Generator().manual_seed(0))
    assert draws.min() >= -1 and draws.max() <= 2 and abs(draws.mean().item() - 0.5) < 0.05
    assert torch.allclose(head.mean(params[:1]), torch.tensor([0.5]))
    with pytest.raises(ChainruleError):
        head.validate(torch.tensor([float("nan")]))
