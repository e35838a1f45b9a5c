"""Multivariate Gaussian with full or diagonal covariance: closed-form MLE, exact conditionals.

Covariances are parameterised by a Cholesky factor whose diagonal is `floor + exp(raw)`, with
`floor = sqrt(min_variance) / 2`, so gradient training can never produce a singular matrix; the
closed-form fit adds `min_variance` to the diagonal (as scikit-learn's `reg_covar` does).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chainrule.devices import draw
from chainrule.errors import ChainruleError
from chainrule.models.base import Model, register_model
from chainrule.validation import as_batch, check_completion, check_finite

COVARIANCES = ("full", "diag")
LOG_2PI = math.log(2 * math.pi)


def check_covariance(kind: str) -> str:
    if kind not in COVARIANCES:
        raise ChainruleError(f"covariance must be one of {COVARIANCES}, got {kind!r}")
    return kind


class CholeskyParameter(nn.Module):
    """A stack of `batch` lower-triangular factors L (D x D) with a floored positive diagonal;
    for `diag`, only the diagonal is free."""

    def __init__(self, batch: int, dim: int, kind: str, min_variance: float):
        super().__init__()
        self.kind, self.dim = check_covariance(kind), dim
        self.floor = math.sqrt(min_variance) / 2
        self.raw_diag = nn.Parameter(torch.full((batch, dim), math.log(1.0 - self.floor)))
        if kind == "full":
            self.raw_lower = nn.Parameter(torch.zeros(batch, dim, dim))
            self.register_buffer("strict", torch.ones(dim, dim).tril(-1), persistent=False)

    def diagonal(self) -> torch.Tensor:
        return self.floor + torch.exp(self.raw_diag)

    def factor(self) -> torch.Tensor:
        """L with L L^T = covariance, (batch, D, D)."""
        low = torch.diag_embed(self.diagonal())
        if self.kind == "full":
            low = low + self.raw_lower * self.strict
        return low

    @torch.no_grad()
    def set_covariance(self, cov: torch.Tensor) -> None:
        """Set L from covariances (batch, D, D) (diagonal of `cov` only, for `diag`)."""
        if self.kind == "diag":
            d = torch.diagonal(cov, dim1=-2, dim2=-1).sqrt()
        else:
            low = torch.linalg.cholesky(cov)
            d = torch.diagonal(low, dim1=-2, dim2=-1)
            self.raw_lower.copy_(low * self.strict)
        self.raw_diag.copy_(torch.log((d - self.floor).clamp_min(1e-300)))

    def log_density(self, x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """log N(x; means_k, L_k L_k^T) for x (B, D), means (batch, D): (B, batch)."""
        diff = x.unsqueeze(1) - means.unsqueeze(0)  # (B, batch, D)
        if self.kind == "diag":
            z = diff / self.diagonal()
        else:
            low = self.factor()
            z = torch.linalg.solve_triangular(low, diff.permute(1, 2, 0), upper=False).permute(2, 0, 1)
        log_det = torch.log(self.diagonal()).sum(-1)
        return -0.5 * (z * z).sum(-1) - log_det - 0.5 * self.dim * LOG_2PI


def conditional_gaussian(
    mean: torch.Tensor, cov: torch.Tensor, observed: torch.Tensor, x_obs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, U) and Cholesky factor (U, U) of x_u | x_o = x_obs for N(mean, cov), where
    `observed` is a (D,) bool pattern and U the number of unobserved dimensions."""
    o, u = observed, ~observed
    s_uu = cov[u][:, u]
    if not o.any():
        return mean[u].expand(x_obs.shape[0], -1), torch.linalg.cholesky(s_uu)
    s_uo, s_oo = cov[u][:, o], cov[o][:, o]
    gain = torch.linalg.solve(s_oo, s_uo.T).T  # (U, O)
    cond_mean = mean[u] + (x_obs - mean[o]) @ gain.T
    cond_cov = s_uu - gain @ s_uo.T
    return cond_mean, torch.linalg.cholesky(0.5 * (cond_cov + cond_cov.T))


def marginal_log_density(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    """log N(x; means_k, covs_k) for x (B, d), means (K, d), covs (K, d, d): (B, K)."""
    low = torch.linalg.cholesky(covs)
    diff = (x.unsqueeze(1) - means.unsqueeze(0)).permute(1, 2, 0)  # (K, d, B)
    z = torch.linalg.solve_triangular(low, diff, upper=False)
    log_det = torch.log(torch.diagonal(low, dim1=-2, dim2=-1)).sum(-1)
    return (-0.5 * (z * z).sum(1) - log_det.unsqueeze(1) - 0.5 * x.shape[1] * LOG_2PI).T


def prepare_continuous(
    x: torch.Tensor, dim: int, dtype: torch.dtype, what: str = "x", device: torch.device | None = None
) -> torch.Tensor:
    """(B, dim) finite real values in `dtype` (on `device` when given: a model's), or a clear error."""
    x = as_batch(x, (dim,), what)
    check_finite(x, what)
    return x.to(device=device, dtype=dtype)


@register_model("gaussian")
class Gaussian(Model):
    """N(mean, covariance) over R^dim; `covariance` is "full" or "diag"."""

    value_type = "continuous"
    num_values = 0
    exact_completion = True

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 2}  # 2-D: the contract suite integrates the density on a grid

    def __init__(self, dim: int, covariance: str = "full", min_variance: float = 1e-6):
        super().__init__()
        self.remember_config(locals())
        if dim < 1:
            raise ChainruleError(f"dim must be positive, got {dim}")
        self.dim, self.event_shape = int(dim), (int(dim),)
        self.min_variance = float(min_variance)
        self.mean = nn.Parameter(torch.zeros(dim))
        self.scale = CholeskyParameter(1, dim, covariance, min_variance)

    def covariance(self) -> torch.Tensor:
        low = self.scale.factor()[0]
        return low @ low.T

    @torch.no_grad()
    def fit_mle(self, x: torch.Tensor) -> Gaussian:
        """Closed-form maximum likelihood: the sample mean and the (1/N) sample covariance, plus
        `min_variance` on the diagonal."""
        x = prepare_continuous(x, self.dim, torch.float64)
        mean = x.mean(0)
        diff = x - mean
        cov = diff.T @ diff / x.shape[0] + self.min_variance * torch.eye(self.dim, dtype=x.dtype)
        self.mean.copy_(mean)
        self.scale.set_covariance(cov.unsqueeze(0).to(self.mean.dtype))
        return self

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.check_cond(cond)
        x = prepare_continuous(x, self.dim, self.mean.dtype, device=self.mean.device)
        return self.scale.log_density(x, self.mean.unsqueeze(0))[:, 0]

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
        """Draws mean + L eps; with `given`/`mask` (True = observed) the unobserved part is drawn
        from its exact conditional Gaussian given the observed part."""
        self.check_sample_request(n, cond, generator)
        dtype, dev = self.mean.dtype, self.mean.device
        eps = draw(torch.randn, n, self.dim, generator=generator, device=dev, dtype=dtype)
        if given is None and mask is None:
            return self.mean + eps @ self.scale.factor()[0].T
        given, obs = completion_inputs(given, mask, n, self.dim, self.mean.dtype, dev)
        out = given.clone()
        cov = self.covariance()
        for pattern in torch.unique(obs, dim=0):
            rows = (obs == pattern).all(1)
            if pattern.all():
                continue
            mean_u, low = conditional_gaussian(self.mean, cov, pattern, given[rows][:, pattern])
            block = out[rows]
            block[:, ~pattern] = mean_u + eps[rows][:, ~pattern] @ low.T
            out[rows] = block
        return out


def completion_inputs(
    given, mask, n: int, dim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (given, observed-mask), both (n, dim) and on the model's `device`, for completion
    by a continuous model (`check_completion`: unobserved entries, NaN included, are ignored)."""
    return check_completion(given, mask, n, (dim,), check_finite, dtype=dtype, device=device)
