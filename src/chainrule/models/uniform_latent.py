"""The continuous latent model of the course: Z ~ Uniform(a, b), X | Z ~ N(Z, sigma^2).

The Bayes net Z -> X with one real-valued latent (not a mixture with equal weights: Z takes a
continuum of values). In `dim` dimensions every coordinate shares the one Z, X_j = Z + sigma eps_j,
and the marginal density is still exact, with normal CDFs Phi:

    p(x) = (2 pi sigma^2)^(-(D-1)/2) D^(-1/2) exp(-S / (2 sigma^2))
           * [Phi((b - m) / s) - Phi((a - m) / s)] / (b - a),

where m is the mean of x's D coordinates, S = sum_j (x_j - m)^2 and s = sigma / sqrt(D): the
product of the D Gaussians is a Gaussian in z around m, integrated over [a, b]. For D = 1 this is
p(x) = [Phi((b - x) / sigma) - Phi((a - x) / sigma)] / (b - a). The difference of CDFs is taken in
log space (`log_ndtr_difference`), so far tails give finite log-densities, not log(0).

Sampling is ancestral (z, then x); completion draws z from its exact posterior given the observed
coordinates (a normal truncated to [a, b]), then the missing coordinates, so it is exact for any mask.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chainrule.devices import draw
from chainrule.distributions import Uniform, log1mexp
from chainrule.errors import ChainruleError
from chainrule.models.base import Model, register_model
from chainrule.models.gaussian import completion_inputs, prepare_continuous

LOG_2PI = math.log(2 * math.pi)


def log_ndtr_difference(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for hi > lo without cancellation: when both lie in the upper tail it
    is computed as Phi(-lo) - Phi(-hi), the same number."""
    upper = (hi + lo) > 0
    h, l_ = torch.where(upper, -lo, hi), torch.where(upper, -hi, lo)
    log_h, log_l = torch.special.log_ndtr(h), torch.special.log_ndtr(l_)
    return log_h + log1mexp(torch.clamp(log_l - log_h, max=-1e-30))


def uniform_latent_log_density(
    x: torch.Tensor, low: torch.Tensor, log_width: torch.Tensor, log_sigma: torch.Tensor
) -> torch.Tensor:
    """log p(x) of the model for x (B, D) and scalar parameters (a, log(b - a), log sigma): (B,)."""
    d = x.shape[1]
    sigma, width = torch.exp(log_sigma), torch.exp(log_width)
    m = x.mean(1)
    spread = ((x - m[:, None]) ** 2).sum(1)
    s = sigma / math.sqrt(d)
    log_mass = log_ndtr_difference((low + width - m) / s, (low - m) / s)
    log_within = -0.5 * (d - 1) * (LOG_2PI + 2 * log_sigma) - 0.5 * math.log(d) - spread / (2 * sigma**2)
    return log_within + log_mass - log_width


def truncated_normal(
    mean: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, high: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """N(mean, scale^2) truncated to [low, high], by the inverse CDF of the uniforms `u`, in log
    space (the upper tail is mirrored to the lower one); clamped to [low, high] against rounding."""
    alpha, beta = (low - mean) / scale, (high - mean) / scale
    flip = (alpha + beta) > 0
    lo, hi = torch.where(flip, -beta, alpha), torch.where(flip, -alpha, beta)
    log_p = torch.logaddexp(torch.special.log_ndtr(lo), torch.log(u) + log_ndtr_difference(hi, lo))
    t = torch.special.ndtri(torch.exp(log_p))
    return torch.minimum(torch.maximum(mean + scale * torch.where(flip, -t, t), low), high)


@register_model("uniform-latent")
class UniformLatent(Model):
    """Z ~ Uniform(low, high), X_j | Z ~ N(Z, sigma^2) for j = 1..dim (one Z shared by all
    coordinates); parameters a = `low`, b = `high`, sigma, learned by maximum likelihood
    (`fit`, or gradient ascent on `log_prob` through the common trainer)."""

    value_type = "continuous"
    num_values = 0
    exact_completion = True  # z | x_observed is a truncated normal: exact for any mask

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 2, "low": -1.0, "high": 1.0, "sigma": 0.5}  # 2-D: integrated on a grid

    def __init__(self, dim: int = 1, low: float = 0.0, high: float = 1.0, sigma: float = 1.0):
        super().__init__()
        self.remember_config(locals())
        if int(dim) < 1:
            raise ChainruleError(f"dim must be positive, got {dim}")
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ChainruleError(f"need finite low < high, got low={low}, high={high}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ChainruleError(f"sigma must be positive and finite, got {sigma}")
        self.dim, self.event_shape = int(dim), (int(dim),)
        self.low = nn.Parameter(torch.tensor(float(low)))
        self.log_width = nn.Parameter(torch.tensor(math.log(high - low)))
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        self.latent = Uniform()

    @property
    def high(self) -> torch.Tensor:
        """b = a + exp(log width): always above a."""
        return self.low + torch.exp(self.log_width)

    @property
    def sigma(self) -> torch.Tensor:
        return torch.exp(self.log_sigma)

    def parameters_dict(self) -> dict[str, float]:
        """The fitted (a, b, sigma) as plain floats."""
        with torch.no_grad():
            return {"low": float(self.low), "high": float(self.high), "sigma": float(self.sigma)}

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) in nats, shape (B,) (see the module docstring for the formula)."""
        self.check_cond(cond)
        x = prepare_continuous(x, self.dim, self.low.dtype, device=self.low.device)
        return uniform_latent_log_density(x, self.low, self.log_width, self.log_sigma)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral draws: z ~ Uniform(a, b), then x = z + sigma eps. With `given`/`mask` (True =
        observed), z is drawn from its posterior given the observed coordinates (uniform on [a, b]
        when none is observed), then the unobserved coordinates given z."""
        self.check_sample_request(n, cond, generator)
        dev, dtype = self.low.device, self.low.dtype
        if given is None and mask is None:
            z = self.latent.sample(torch.stack([self.low, self.high]).expand(n, 2), generator)
            eps = draw(torch.randn, n, self.dim, generator=generator, device=dev, dtype=dtype)
            return z[:, None] + self.sigma * eps
        given, obs = completion_inputs(given, mask, n, self.dim, dtype, dev)
        u = draw(torch.rand, n, generator=generator, device=dev, dtype=dtype)
        eps = draw(torch.randn, n, self.dim, generator=generator, device=dev, dtype=dtype)
        z = self._posterior_latent(given, obs, u)
        return torch.where(obs, given, z[:, None] + self.sigma * eps)

    def _posterior_latent(self, given: torch.Tensor, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """z | x_observed: N(mean of the k observed values, sigma^2 / k) truncated to [a, b]; the
        uniform prior itself where k = 0. Computed in float64."""
        k = obs.sum(1).double()
        m = (given.double() * obs).sum(1) / k.clamp(min=1)
        low, high = self.low.double().expand_as(m), self.high.double().expand_as(m)
        u64 = u.double().clamp(1e-12, 1 - 1e-12)
        scale = self.sigma.double() / k.clamp(min=1).sqrt()
        z = torch.where(k > 0, truncated_normal(m, scale, low, high, u64), low + (high - low) * u64)
        return z.to(given.dtype)

    def fit(self, x: torch.Tensor, max_iter: int = 200) -> UniformLatent:
        """Maximum likelihood by L-BFGS (float64) from a start read off the data (quantiles of the
        per-example means for a and b; the within-example spread, or a fraction of the spread of
        the means in 1-D, for sigma). Returns self."""
        x = prepare_continuous(x, self.dim, torch.float64)
        m = x.mean(1)
        lo, hi = torch.quantile(m, 0.02), torch.quantile(m, 0.98)
        width = torch.clamp(hi - lo, min=1e-3)
        if self.dim > 1:
            sigma = (((x - m[:, None]) ** 2).sum() / (x.shape[0] * (self.dim - 1))).sqrt().clamp(min=1e-3)
        else:
            sigma = 0.1 * width
        theta = torch.stack([lo, torch.log(width), torch.log(sigma)]).requires_grad_(True)
        opt = torch.optim.LBFGS([theta], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = -uniform_latent_log_density(x, theta[0], theta[1], theta[2]).mean()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            for p, v in zip((self.low, self.log_width, self.log_sigma), theta.detach()):
                p.copy_(v)
        return self
