"""Expectation-maximisation for `GaussianMixtureModel`, with k-means++ initialisation.

All arithmetic is float64. The updates are the textbook ones (and scikit-learn's): E-step
responsibilities r_nk = p(z=k | x_n); M-step N_k = sum_n r_nk, w_k = N_k / N,
mu_k = sum_n r_nk x_n / N_k, Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + floor * I,
where the floor (`min_variance`, scikit-learn's `reg_covar`) keeps a component from collapsing
onto one point. Stops when the mean log-likelihood changes by less than `tol`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from chainrule.errors import ChainruleError
from chainrule.models.gaussian import prepare_continuous
from chainrule.models.mixture import GaussianMixtureModel

TINY = 10 * torch.finfo(torch.float64).eps  # keeps N_k > 0 for an empty component


@dataclass
class EMResult:
    """Mean log-likelihood (nats per point) before each M-step, and whether `tol` was met."""

    log_likelihood: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def iterations(self) -> int:
        return len(self.log_likelihood)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): the first centre uniformly, each next one
    with probability proportional to the squared distance to the nearest chosen centre."""
    n = x.shape[0]
    if k > n:
        raise ChainruleError(f"cannot pick {k} centres from {n} points")
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # all remaining points coincide with centres: pick uniformly
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=generator))
        centres.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(
    x: torch.Tensor, k: int, generator: torch.Generator | None = None, iterations: int = 100
) -> torch.Tensor:
    """Lloyd's k-means from a k-means++ start; returns the hard assignment of each point."""
    centres = kmeans_plus_plus(x, k, generator)
    assign = torch.cdist(x, centres).argmin(1)
    for _ in range(iterations):
        for j in range(k):
            members = x[assign == j]
            if len(members):
                centres[j] = members.mean(0)
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign


def m_step(
    x: torch.Tensor, resp: torch.Tensor, covariance: str, min_variance: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights (K,), means (K, D) and covariances (K, D, D) maximising the expected complete
    log-likelihood under responsibilities `resp` (N, K)."""
    nk = resp.sum(0) + TINY
    means = resp.T @ x / nk.unsqueeze(1)
    diff = x.unsqueeze(0) - means.unsqueeze(1)  # (K, N, D)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    if covariance == "diag":
        var = torch.einsum("nk,knd->kd", resp, diff * diff) / nk.unsqueeze(1) + min_variance
        covs = torch.diag_embed(var)
    else:
        covs = torch.einsum("nk,kni,knj->kij", resp, diff, diff) / nk.view(-1, 1, 1) + min_variance * eye
    return nk / nk.sum(), means, covs


@torch.no_grad()
def fit_em(
    model: GaussianMixtureModel,
    x: torch.Tensor,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
    init: str = "kmeans++",
    generator: torch.Generator | None = None,
) -> EMResult:
    """Fit `model` to `x` (N, D) by EM. `init`: "kmeans++" (k-means from a k-means++ seeding,
    then one M-step from the hard assignment) or "current" (start from the model's parameters,
    e.g. ones set with `set_parameters`)."""
    if init not in ("kmeans++", "current"):
        raise ChainruleError(f"init must be 'kmeans++' or 'current', got {init!r}")
    x = prepare_continuous(x, model.dim, torch.float64)
    dtype = model.means.dtype
    model.double()
    try:
        if init == "kmeans++":
            assign = kmeans(x, model.components, generator)
            resp = torch.nn.functional.one_hot(assign, model.components).double()
            model.set_parameters(*m_step(x, resp, model.covariance_type, model.min_variance))
        result = EMResult()
        previous = -float("inf")
        for _ in range(max_iter):
            joint = model.joint_log_prob(x)
            log_norm = torch.logsumexp(joint, dim=1)
            ll = float(log_norm.mean())
            result.log_likelihood.append(ll)
            resp = torch.exp(joint - log_norm.unsqueeze(1))
            model.set_parameters(*m_step(x, resp, model.covariance_type, model.min_variance))
            if abs(ll - previous) < tol:
                result.converged = True
                break
            previous = ll
        return result
    finally:
        model.to(dtype)
