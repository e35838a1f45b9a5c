"""Real-valued models: Gaussian-mixture head, Gaussian, mixture of Gaussians (EM vs
scikit-learn), RNADE. Densities integrate to 1; samplers and completion are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from chainrule.data.continuous import faithful_array
from chainrule.distributions import GaussianMixture
from chainrule.errors import ChainruleError
from chainrule.models import RNADE, Gaussian, GaussianMixtureModel
from chainrule.models.em import fit_em, kmeans_plus_plus
from chainrule.persistence import load, save
from tests.conftest import randomize


def grid(lo: float, hi: float, n: int) -> tuple[torch.Tensor, float]:
    t = torch.linspace(lo, hi, n, dtype=torch.float64)
    return t, float(t[1] - t[0])


def integral_2d(log_density, lo: float = -9.0, hi: float = 9.0, n: int = 601) -> float:
    t, h = grid(lo, hi, n)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        return float(log_density(pts).exp().sum() * h * h)


def head_params(k: int, n: int, seed: int) -> torch.Tensor:
    """n random parameter sets of a k-component head, scales between about 0.1 and 1.7."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64)
    means = 2 * torch.randn(n, k, generator=g, dtype=torch.float64)
    raw = torch.empty(n, k, dtype=torch.float64).uniform_(-2.5, 0.5, generator=g)
    return torch.cat([logits, means, raw], 1)


def test_gaussian_mixture_head_integrates_to_one_in_1d() -> None:
    head = GaussianMixture(4, min_scale=0.05)
    params = head_params(4, 3, seed=0)
    t, h = grid(-30, 30, 60001)
    for p in params:
        density = head.log_prob(p.expand(len(t), -1), t).exp()
        assert float(density.sum() * h) == pytest.approx(1.0, abs=1e-8)


def test_gaussian_mixture_head_integrates_to_one_in_2d() -> None:
    """Two independent mixture-head conditionals: a product density on the plane."""
    head = GaussianMixture(3, min_scale=0.1)
    p1, p2 = head_params(3, 2, seed=1)
    total = integral_2d(
        lambda x: (
            head.log_prob(p1.expand(len(x), -1), x[:, 0]) + head.log_prob(p2.expand(len(x), -1), x[:, 1])
        )
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_gaussian_mixture_head_samples_match_its_moments() -> None:
    head = GaussianMixture(2)
    params = torch.tensor([0.0, 1.0, -2.0, 3.0, math.log(0.5), math.log(1.0)], dtype=torch.float64)
    x = head.sample(params.expand(200000, -1), torch.Generator().manual_seed(0))
    w = torch.softmax(torch.tensor([0.0, 1.0]), 0).double()
    mean = float(w[0] * -2 + w[1] * 3)
    assert float(x.mean()) == pytest.approx(mean, abs=0.02)


def rnade(dim: int, seed: int = 0, **kwargs) -> RNADE:
    model = RNADE(dim, hidden=5, components=3, min_scale=0.05, seed=seed, **kwargs).double()
    with torch.no_grad():  # random but well-conditioned: scales stay moderate
        g = torch.Generator().manual_seed(seed)
        for p in (model.W, model.V, model.c):
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        model.V[..., -3:].mul_(0.3)  # the log-scale outputs: keep scales within about [0.3, 3]
    return model.eval()


def test_rnade_integrates_to_one_in_1d() -> None:
    model = rnade(1)
    t, h = grid(-30, 30, 60001)
    with torch.no_grad():
        assert float(model.log_prob(t[:, None]).exp().sum() * h) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("uniform_weights", [False, True])
@pytest.mark.parametrize("num_orders", [1, 2])
def test_rnade_integrates_to_one_in_2d(num_orders: int, uniform_weights: bool) -> None:
    """One order, and the two-order ensemble (a mixture of the two orders' densities); learned
    and fixed (1/K) mixture weights."""
    with torch.no_grad():
        model = rnade(2, seed=1, num_orders=num_orders, order=[1, 0], uniform_weights=uniform_weights)
        assert integral_2d(model.log_prob, -15, 15, 901) == pytest.approx(1.0, abs=1e-6)


def test_rnade_order_ensemble_is_the_mean_of_its_orders() -> None:
    model = rnade(3, seed=4, num_orders=3)
    x = torch.randn(20, 3, dtype=torch.float64)
    with torch.no_grad():
        singles = []
        for m in range(3):
            with model.keeping_current_mask():
                model.use_mask(m)
                singles.append(model.training_log_prob(x).exp())  # the member in use
        mixture = model.log_prob(x).exp()
        assert torch.allclose(mixture, torch.stack(singles).mean(0), rtol=1e-12)
        model.train()  # the mixture in every mode
        assert torch.equal(model.log_prob(x).exp(), mixture)
        model.eval()
    assert len({tuple(o.tolist()) for o in model.orders}) == 3


def test_rnade_with_uniform_weights_mixes_its_gaussians_equally(tmp_path) -> None:
    """The course notes' RNADE: p(x_d | x_<d) = sum_k N(x_d; mu_dk, sigma_dk) / K, no weight outputs."""
    from chainrule.persistence import load, save

    model = rnade(3, seed=5, uniform_weights=True)
    learned = rnade(3, seed=5)  # hidden 5, components 3: V (3, 5, 9) against (3, 5, 6), b (3, 9) and (3, 6)
    assert learned.num_parameters() - model.num_parameters() == 3 * 5 * 3 + 3 * 3
    x = torch.randn(7, 3, dtype=torch.float64)
    with torch.no_grad():
        log_w, means, scales = model.head.split(model.conditioner(x))
        assert torch.allclose(log_w, torch.full_like(log_w, -math.log(3)), rtol=0, atol=1e-15)
        components = torch.distributions.Normal(means, scales).log_prob(x.unsqueeze(-1))
        by_hand = (components.logsumexp(-1) - math.log(3)).sum(-1)
        assert torch.allclose(model.log_prob(x), by_hand, rtol=1e-12)
    save(model, tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.uniform_weights and torch.equal(again.log_prob(x), model.log_prob(x))


def test_rnade_has_the_autoregressive_property() -> None:
    model = rnade(6, seed=2, order=[2, 0, 5, 1, 4, 3])
    pos = {d: t for t, d in enumerate(model.sampling_order())}
    x = torch.randn(6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: model.conditioner(v[None])[0], x).abs().sum(1)
    allowed = torch.tensor([[pos[j] < pos[i] for j in range(6)] for i in range(6)])
    assert (jac[~allowed] == 0).all()
    assert (jac[allowed] > 0).all()


@pytest.mark.parametrize("uniform_weights", [False, True])
def test_rnade_fast_sampler_equals_generic_and_completion_keeps_observed(uniform_weights: bool) -> None:
    """Both samplers consume the same random stream; with real values the running sum and the
    batched prefix sum round differently in the last bits, so equality is up to 1e-12."""
    model = rnade(4, seed=3, uniform_weights=uniform_weights)
    a = model.sample(100, generator=torch.Generator().manual_seed(5), method="fast")
    b = model.sample(100, generator=torch.Generator().manual_seed(5), method="generic")
    assert torch.allclose(a, b, rtol=0, atol=1e-12)
    given = torch.randn(100, 4, dtype=torch.float64)
    mask = torch.rand(100, 4) < 0.5
    out = model.sample(100, given=given, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[mask], given[mask])


def test_gaussian_mle_matches_numpy_and_scipy(tmp_path) -> None:
    from scipy.stats import multivariate_normal

    x = torch.from_numpy(faithful_array())
    model = Gaussian(2, min_variance=0.0).double().fit_mle(x)
    cov = np.cov(x.numpy().T, bias=True)
    assert np.allclose(model.mean.detach().numpy(), x.numpy().mean(0), atol=1e-12)
    assert np.allclose(model.covariance().detach().numpy(), cov, atol=1e-9)
    expected = multivariate_normal(x.numpy().mean(0), cov).logpdf(x.numpy())
    assert np.allclose(model.log_prob(x).detach().numpy(), expected, atol=1e-9)
    save(model, tmp_path / "g")
    assert torch.equal(load(tmp_path / "g").log_prob(x), model.log_prob(x))


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gaussian_and_mixture_integrate_to_one_in_2d(covariance: str) -> None:
    mix = GaussianMixtureModel(2, components=3, covariance=covariance, seed=1).double()
    with torch.no_grad():
        mix.means.mul_(2)
        g = torch.Generator().manual_seed(0)
        mix.scale.raw_diag.add_(torch.randn(3, 2, dtype=torch.float64, generator=g) * 0.3)
        if covariance == "full":
            mix.scale.raw_lower.normal_(0, 0.5, generator=g)
    assert integral_2d(mix.log_prob) == pytest.approx(1.0, abs=1e-6)
    assert integral_2d(Gaussian(2, covariance).double().log_prob) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("covariance", ["full", "diag"])
@pytest.mark.parametrize("k", [2, 3])
def test_em_matches_scikit_learn_from_the_same_start(covariance: str, k: int) -> None:
    """Old Faithful: from scikit-learn's own k-means start, our EM and theirs reach the same
    mean log-likelihood within 1e-6 nats per point."""
    x = faithful_array()
    sk = SkGaussianMixture(k, covariance_type=covariance, tol=1e-10, max_iter=1000, random_state=0)
    sk._initialize_parameters(x, np.random.RandomState(0))  # the start sklearn itself uses
    covs = sk.covariances_ if covariance == "full" else np.stack([np.diag(c) for c in sk.covariances_])
    start = (sk.weights_.copy(), sk.means_.copy(), covs.copy())
    prec = np.linalg.inv(covs) if covariance == "full" else 1.0 / sk.covariances_
    sk = SkGaussianMixture(
        k,
        covariance_type=covariance,
        tol=1e-10,
        max_iter=1000,
        weights_init=start[0],
        means_init=start[1],
        precisions_init=prec,
    ).fit(x)
    ours = GaussianMixtureModel(2, components=k, covariance=covariance).double()
    ours.set_parameters(*(torch.from_numpy(a) for a in start))
    result = fit_em(ours, torch.from_numpy(x), init="current", tol=1e-10, max_iter=1000)
    assert result.converged
    mean_ll = float(ours.log_prob(torch.from_numpy(x)).mean().detach())
    assert mean_ll == pytest.approx(sk.score(x), abs=1e-6)
    assert np.allclose(ours.log_prob(torch.from_numpy(x)).detach().numpy(), sk.score_samples(x), atol=1e-6)


def test_em_log_likelihood_never_decreases_and_kmeans_plus_plus_start_works() -> None:
    x = torch.from_numpy(faithful_array())
    x = (x - x.mean(0)) / x.std(0)
    model = GaussianMixtureModel(2, components=4).double()
    result = fit_em(model, x, generator=torch.Generator().manual_seed(0), tol=1e-7, max_iter=300)
    ll = result.log_likelihood
    assert all(b >= a - 1e-10 for a, b in zip(ll, ll[1:]))
    assert ll[-1] > -1.9  # a 4-component fit of standardised Old Faithful: about -1.8 nats/point
    centres = kmeans_plus_plus(x, 4, torch.Generator().manual_seed(0))
    assert len({tuple(c.tolist()) for c in centres}) == 4


def test_uniform_latent_mixture_keeps_equal_weights() -> None:
    x = torch.from_numpy(faithful_array())
    model = GaussianMixtureModel(2, components=3, uniform_weights=True).double()
    fit_em(model, (x - x.mean(0)) / x.std(0), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.log_weights().exp(), torch.full((3,), 1 / 3, dtype=torch.float64))


def test_covariance_floor_stops_collapse_onto_duplicates() -> None:
    x = torch.cat([torch.zeros(50, 2), torch.randn(50, 2)]).double()  # 50 identical points
    model = GaussianMixtureModel(2, components=3, min_variance=1e-3).double()
    fit_em(model, x, generator=torch.Generator().manual_seed(0), max_iter=200)
    assert torch.isfinite(model.log_prob(x)).all()
    assert torch.linalg.eigvalsh(model.covariances()).min() >= 1e-3 - 1e-9


def test_completion_follows_the_exact_conditional() -> None:
    model = Gaussian(2).double()
    with torch.no_grad():
        model.mean.copy_(torch.tensor([1.0, -1.0]))
    model.scale.set_covariance(torch.tensor([[[2.0, 1.2], [1.2, 1.0]]], dtype=torch.float64))
    given = torch.tensor([[2.0, float("nan")]], dtype=torch.float64).expand(40000, -1)
    out = model.sample(40000, given=given, mask=torch.tensor([True, False]), generator=torch.Generator())
    assert (out[:, 0] == 2.0).all()
    assert float(out[:, 1].mean()) == pytest.approx(-1 + 1.2 / 2.0 * 1.0, abs=0.02)
    assert float(out[:, 1].var()) == pytest.approx(1.0 - 1.2**2 / 2.0, abs=0.02)


def test_mixture_completion_keeps_observed_and_mixes_components() -> None:
    model = randomize(GaussianMixtureModel(3, components=2, covariance="full").double(), std=0.3)
    given = torch.randn(500, 3, dtype=torch.float64)
    mask = torch.rand(500, 3) < 0.5
    out = model.sample(500, given=given, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[mask], given[mask]) and torch.isfinite(out).all()


@pytest.mark.parametrize("model", [Gaussian(2), GaussianMixtureModel(2), RNADE(2)], ids=type)
def test_bad_continuous_input_is_a_clear_error(model) -> None:
    with pytest.raises(ChainruleError, match="NaN"):
        model.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ChainruleError, match="shape"):
        model.log_prob(torch.zeros(3, 5))


def test_mixture_trains_by_gradient_through_the_common_trainer(tmp_path) -> None:
    from chainrule.data import load_dataset
    from chainrule.training import TrainConfig, fit

    data = load_dataset("faithful")
    model = GaussianMixtureModel(2, components=2, seed=3)
    with torch.no_grad():
        before = float(model.log_prob(data.val).mean())
    cfg = TrainConfig(batch_size=32, max_epochs=40, lr=0.05, patience=40, progress=False)
    fit(model, data, cfg, tmp_path / "run")
    with torch.no_grad():
        after = float(model.log_prob(data.val).mean())
    assert after > before and after > -2.0  # two clusters found: about -1.4 nats per point
