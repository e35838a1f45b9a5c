"""Heads: the family of each one-dimensional conditional of an autoregressive model.

A head turns the conditioner's raw parameters for one or more dimensions into a
log-probability and a sample. Sampling draws a fixed number of uniforms per (example,
dimension) (one for discrete heads, two for the Gaussian mixture), so any two samplers that
visit dimensions in the same order with the same generator consume the same random stream and
return identical samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from chainrule.devices import draw
from chainrule.validation import check_discrete, check_finite


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """U(0, 1) draws of `shape` in `like`'s dtype and on its device, made on the generator's device
    (see chainrule.devices), so a CPU generator can drive a model on a GPU."""
    return draw(torch.rand, shape, generator=generator, device=like.device, dtype=like.dtype)


class Head:
    """Per-dimension conditional family; `params_per_dim` raw numbers per dimension."""

    params_per_dim: int = 1
    num_values: int = 2

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log p(x | params) with params shaped (..., params_per_dim) or (...)."""
        raise NotImplementedError

    def log_prob_sum(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`log_prob` summed over x's last axis (an example's dimensions): its log-likelihood. A
        head overrides it where summing first saves a pass over the (B, D) terms."""
        return self.log_prob(params, x).sum(-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw per parameter set, from one uniform each."""
        raise NotImplementedError

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        """Refuse values this head cannot score (non-integers, out of range, NaN) with a clear error."""
        check_discrete(x, self.num_values, what)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | params] (the smooth picture of a VAE's decoder)."""
        raise NotImplementedError

    def log_prob_all(self, params: torch.Tensor) -> torch.Tensor:
        """log p(v | params) for every value v = 0..num_values-1, shape (..., num_values): the whole
        conditional of a discrete head (for greedy decoding and purification)."""
        values = torch.arange(self.num_values, device=params.device, dtype=params.dtype)
        if self.params_per_dim == 1:  # one number per dimension (Bernoulli): params (...)
            shape = params.shape
            expanded = params.unsqueeze(-1).expand(*shape, self.num_values)
        else:
            shape = params.shape[:-1]
            expanded = params.unsqueeze(-2).expand(*shape, self.num_values, params.shape[-1])
        return self.log_prob(expanded, values.expand(*shape, self.num_values))


class Bernoulli(Head):
    """Binary values from one logit each."""

    params_per_dim = 1
    num_values = 2

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -_bernoulli_nll(params, x)

    def log_prob_sum(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Negated after the sum: B values, not B x D (the same numbers to the last bit; ~20 us of
        a ~3 ms FVSBN-784 training step at batch 128)."""
        return -_bernoulli_nll(params, x).sum(-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        u = _uniform(params.shape, generator, params)
        return (u < torch.sigmoid(params)).to(params.dtype)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


def _bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) of each binary value, in the logits' dtype."""
    return F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")


class Categorical(Head):
    """Values in {0, ..., K-1} from K logits each (last axis of params)."""

    def __init__(self, num_values: int) -> None:
        if num_values < 2:
            raise ValueError("Categorical needs at least 2 values")
        self.num_values = num_values
        self.params_per_dim = num_values

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(params, dim=-1)
        return logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        cdf = torch.softmax(params, dim=-1).cumsum(-1)
        u = _uniform(params.shape[:-1], generator, cdf)
        idx = (cdf < u.unsqueeze(-1)).sum(-1).clamp_(max=self.num_values - 1)
        return idx.to(params.dtype)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        values = torch.arange(self.num_values, dtype=params.dtype, device=params.device)
        return torch.softmax(params, -1) @ values


class Gaussian(Head):
    """Real values from N(mean, scale^2): the last axis of params holds (mean, raw scale), with
    scale = softplus(raw) + `min_scale` (floored, so the density stays finite). Sampling uses one
    standard normal draw per value."""

    value_type = "continuous"
    params_per_dim = 2
    num_values = 0

    def __init__(self, min_scale: float = 1e-3) -> None:
        if min_scale <= 0:
            raise ValueError("min_scale must be positive")
        self.min_scale = min_scale

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, log-scales), each (...)."""
        mean, raw = params.unbind(-1)
        return mean, torch.log(F.softplus(raw) + self.min_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_scale = self.split(params)
        return -0.5 * (((x - mean) * torch.exp(-log_scale)) ** 2 + math.log(2 * math.pi)) - log_scale

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, raw = params.unbind(-1)
        eps = draw(torch.randn, mean.shape, generator=generator, device=params.device, dtype=params.dtype)
        return mean + (F.softplus(raw) + self.min_scale) * eps

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        check_finite(x, what)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., 0]


class Uniform(Head):
    """Real values from Uniform(low, high): the last axis of params holds (low, high), high > low.
    The density is 1 / (high - low) on [low, high] and 0 (log: -inf) outside; sampling turns one
    uniform draw per value into low + (high - low) u. The continuous latent of the course's
    Z ~ Uniform(a, b), X | Z ~ N(Z, sigma^2) (`models.uniform_latent`)."""

    value_type = "continuous"
    params_per_dim = 2
    num_values = 0

    @staticmethod
    def split(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high), each (...)."""
        low, high = params.unbind(-1)
        return low, high

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        low, high = self.split(params)
        x = x.to(params.dtype)
        inside = (x >= low) & (x <= high)
        return torch.where(inside, -torch.log(high - low), torch.full_like(x, -math.inf))

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        low, high = self.split(params)
        return low + (high - low) * _uniform(low.shape, generator, params)

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        check_finite(x, what)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        low, high = self.split(params)
        return 0.5 * (low + high)


class GaussianMixture(Head):
    """Real values from a K-component mixture of 1-D Gaussians (RNADE's conditional).

    The last axis of params holds 3K numbers: K mixture logits, K means, K raw scales; the
    scale is `min_scale + exp(raw)` (raw capped at 30), so no component collapses onto a single
    point and the density stays finite. Sampling uses two uniforms per value: one picks the
    component, one is turned into a standard normal by the inverse CDF.
    """

    value_type = "continuous"

    def __init__(self, components: int, min_scale: float = 1e-3) -> None:
        if components < 1:
            raise ValueError("GaussianMixture needs at least 1 component")
        if min_scale <= 0:
            raise ValueError("min_scale must be positive")
        self.components = components
        self.min_scale = min_scale
        self.params_per_dim = 3 * components
        self.num_values = 0

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log weights, means, scales), each (..., K)."""
        logits, means, raw = params.unflatten(-1, (3, self.components)).unbind(-2)
        scales = self.min_scale + torch.exp(raw.clamp(max=30.0))
        return torch.log_softmax(logits, dim=-1), means, scales

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_w, means, scales = self.split(params)
        z = (x.unsqueeze(-1) - means) / scales
        log_comp = -0.5 * z * z - torch.log(scales) - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(log_w + log_comp, dim=-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        log_w, means, scales = self.split(params)
        u = _uniform((*params.shape[:-1], 2), generator, params)
        cdf = torch.exp(log_w).cumsum(-1)
        k = (cdf < u[..., :1]).sum(-1, keepdim=True).clamp_(max=self.components - 1)
        eps = torch.special.ndtri(u[..., 1].clamp(1e-12, 1 - 1e-12))
        return means.gather(-1, k).squeeze(-1) + scales.gather(-1, k).squeeze(-1) * eps

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        check_finite(x, what)


def log1mexp(z: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(z)) for z <= 0, accurate near 0 and far from it (Mächler 2012)."""
    return torch.where(z > -math.log(2), torch.log(-torch.expm1(z)), torch.log1p(-torch.exp(z)))


def log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b without cancellation: in the upper tail it is
    computed as sigmoid(-b) - sigmoid(-a), which is the same number."""
    upper = (a + b) > 0
    hi = torch.where(upper, -b, a)
    lo = torch.where(upper, -a, b)
    log_hi, log_lo = F.logsigmoid(hi), F.logsigmoid(lo)
    return log_hi + log1mexp(torch.clamp(log_lo - log_hi, max=-1e-30))


class DiscretizedLogisticMixture(Head):
    """L-level values (8-bit pixels: L = 256) from a K-component mixture of logistics
    discretized into L equal bins of [-1, 1] (Salimans et al. 2017, PixelCNN++).

    Value k sits at the centre c_k = 2k/(L-1) - 1 of a bin of half-width 1/(L-1); the outer bins
    extend to ±infinity, so the L probabilities sum to exactly 1. The last axis of params holds
    3K numbers: K mixture logits, K means, K log-scales (floored at -7). Bin probabilities are
    differences of sigmoids, computed in log space without cancellation (no pdf approximation).
    Sampling uses two uniforms per value: the component, then a logistic draw rounded to its bin.
    """

    def __init__(self, components: int = 5, num_values: int = 256) -> None:
        if components < 1:
            raise ValueError("DiscretizedLogisticMixture needs at least 1 component")
        if num_values < 2:
            raise ValueError("DiscretizedLogisticMixture needs at least 2 levels")
        self.components = components
        self.num_values = num_values
        self.params_per_dim = 3 * components

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log weights, means, log-scales), each (..., K)."""
        logits, means, log_scales = params.unflatten(-1, (3, self.components)).unbind(-2)
        return torch.log_softmax(logits, dim=-1), means, log_scales.clamp(min=-7.0)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_w, means, log_scales = self.split(params)
        half = 1.0 / (self.num_values - 1)
        centre = (x.to(params.dtype) * (2 * half) - 1).unsqueeze(-1)
        inv_s = torch.exp(-log_scales)
        upper = (centre + half - means) * inv_s
        lower = (centre - half - means) * inv_s
        first = (x == 0).unsqueeze(-1)
        last = (x == self.num_values - 1).unsqueeze(-1)
        big = torch.full_like(upper, 1e4)  # sigmoid(±1e4) is exactly 1 / 0: the open outer bins
        log_bin = log_sigmoid_difference(torch.where(last, big, upper), torch.where(first, -big, lower))
        return torch.logsumexp(log_w + log_bin, dim=-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        log_w, means, log_scales = self.split(params)
        u = _uniform((*params.shape[:-1], 2), generator, params)
        cdf = torch.exp(log_w).cumsum(-1)
        k = (cdf < u[..., :1]).sum(-1, keepdim=True).clamp_(max=self.components - 1)
        v = u[..., 1].clamp(1e-12, 1 - 1e-12)
        y = means.gather(-1, k).squeeze(-1) + torch.exp(log_scales.gather(-1, k).squeeze(-1)) * (
            torch.log(v) - torch.log1p(-v)
        )
        level = torch.round((y + 1) * (self.num_values - 1) / 2)
        return level.clamp(0, self.num_values - 1)
