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

from chainrule.validation import check_discrete, check_finite


class Head:
    """Per-dimension conditional family; `params_per_dim` raw numbers per dimension."""

    params_per_dim: int = 1
    num_values: int = 2

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log p(x | params) with params shaped (..., params_per_dim) or (...)."""
        raise NotImplementedError

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw per parameter set, from one uniform each."""
        raise NotImplementedError

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        """Refuse values this head cannot score (non-integers, out of range, NaN) with a clear error."""
        check_discrete(x, self.num_values, what)


class Bernoulli(Head):
    """Binary values from one logit each."""

    params_per_dim = 1
    num_values = 2

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, x.to(params.dtype), reduction="none")

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(params.shape, generator=generator, dtype=params.dtype, device=params.device)
        return (u < torch.sigmoid(params)).to(params.dtype)


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
        u = torch.rand(params.shape[:-1], generator=generator, dtype=cdf.dtype, device=cdf.device)
        idx = (cdf < u.unsqueeze(-1)).sum(-1).clamp_(max=self.num_values - 1)
        return idx.to(params.dtype)


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
        u = torch.rand((*params.shape[:-1], 2), generator=generator, dtype=params.dtype, device=params.device)
        cdf = torch.exp(log_w).cumsum(-1)
        k = (cdf < u[..., :1]).sum(-1, keepdim=True).clamp_(max=self.components - 1)
        eps = torch.special.ndtri(u[..., 1].clamp(1e-12, 1 - 1e-12))
        return means.gather(-1, k).squeeze(-1) + scales.gather(-1, k).squeeze(-1) * eps

    def validate(self, x: torch.Tensor, what: str = "x") -> None:
        check_finite(x, what)
