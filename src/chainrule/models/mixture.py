"""Mixture of Gaussians: p(x) = sum_k w_k N(x; mu_k, Sigma_k), a latent-variable model with a
K-valued latent Z and Gaussian X | Z.

Trainable two ways: by EM (`chainrule.models.em.fit_em`, closed-form updates, k-means++ start)
or by gradient ascent on `log_prob` through the common trainer. `uniform_weights=True` fixes
w_k = 1/K: an equal-weight mixture (Z uniform over K discrete values, X | Z Gaussian). That is not
the course's uniform latent model, whose Z ~ Uniform(a, b) takes a continuum of values: that one
is `UniformLatent` (models/uniform_latent.py, registered as "uniform-latent").
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.devices import draw
from chainrule.errors import ChainruleError
from chainrule.models.base import Model, register_model
from chainrule.models.gaussian import (
    CholeskyParameter,
    check_covariance,
    completion_inputs,
    conditional_gaussian,
    marginal_log_density,
    prepare_continuous,
)


@register_model("gaussian-mixture")
class GaussianMixtureModel(Model):
    """K Gaussians over R^dim with full or diagonal covariances and learned (or uniform) weights.

    Means start from N(0, I) draws (seeded), covariances at I: suited to standardised data;
    EM re-initialises everything from the data.
    """

    value_type = "continuous"
    num_values = 0
    #: completion draws the component from its exact posterior given the observed part, then the
    #: rest from that component's exact conditional: exact for any mask
    exact_completion = True

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 2, "components": 2}

    def __init__(
        self,
        dim: int,
        components: int = 2,
        covariance: str = "full",
        uniform_weights: bool = False,
        min_variance: float = 1e-6,
        seed: int = 0,
    ):
        super().__init__()
        self.remember_config(locals())
        if dim < 1 or components < 1:
            raise ChainruleError(f"dim and components must be positive, got {dim} and {components}")
        self.dim, self.components = int(dim), int(components)
        self.event_shape = (self.dim,)
        self.covariance_type = check_covariance(covariance)
        self.uniform_weights = bool(uniform_weights)
        self.min_variance = float(min_variance)
        g = torch.Generator().manual_seed(seed)
        self.logits = nn.Parameter(torch.zeros(components), requires_grad=not self.uniform_weights)
        self.means = nn.Parameter(torch.randn(components, dim, generator=g))
        self.scale = CholeskyParameter(components, dim, covariance, min_variance)

    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=0)

    def covariances(self) -> torch.Tensor:
        low = self.scale.factor()
        return low @ low.transpose(-1, -2)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; mu_k, Sigma_k) for every component: (B, K)."""
        return self.log_weights() + self.scale.log_density(x, self.means)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.check_cond(cond)
        x = prepare_continuous(x, self.dim, self.means.dtype, device=self.means.device)
        return torch.logsumexp(self.joint_log_prob(x), dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior p(z = k | x), (B, K)."""
        x = prepare_continuous(x, self.dim, self.means.dtype, device=self.means.device)
        return torch.softmax(self.joint_log_prob(x), dim=1)

    @torch.no_grad()
    def set_parameters(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        """Overwrite all parameters (e.g. with scikit-learn's or EM's)."""
        dtype = self.means.dtype
        if not self.uniform_weights:
            self.logits.copy_(torch.log(torch.as_tensor(weights, dtype=dtype)))
        self.means.copy_(torch.as_tensor(means, dtype=dtype))
        self.scale.set_covariance(torch.as_tensor(covariances, dtype=dtype))

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
        """Ancestral: z ~ w, then x ~ N(mu_z, Sigma_z). With `given`/`mask` (True = observed),
        exact completion: z ~ p(z | x_obs), then x_unobs from that component's conditional."""
        self.check_sample_request(n, cond, generator)
        dtype, dev = self.means.dtype, self.means.device
        u = draw(torch.rand, n, generator=generator, device=dev, dtype=dtype)
        eps = draw(torch.randn, n, self.dim, generator=generator, device=dev, dtype=dtype)
        low = self.scale.factor()
        if given is None and mask is None:
            z = (self.log_weights().exp().cumsum(0) < u.unsqueeze(1)).sum(1).clamp(max=self.components - 1)
            return self.means[z] + torch.einsum("nij,nj->ni", low[z], eps)
        given, obs = completion_inputs(given, mask, n, self.dim, dtype, dev)
        out = given.clone()
        cov = low @ low.transpose(-1, -2)
        for pattern in torch.unique(obs, dim=0):
            rows = (obs == pattern).all(1)
            if pattern.all():
                continue
            xo = given[rows][:, pattern]
            log_post = self.log_weights().expand(int(rows.sum()), -1)
            if pattern.any():
                log_post = log_post + marginal_log_density(
                    xo, self.means[:, pattern], cov[:, pattern][:, :, pattern]
                )
            cdf = torch.softmax(log_post, 1).cumsum(1)
            z = (cdf < u[rows].unsqueeze(1)).sum(1).clamp(max=self.components - 1)
            block = out[rows]
            for k in z.unique():
                sel = z == k
                mean_u, low_u = conditional_gaussian(self.means[k], cov[k], pattern, xo[sel])
                sub = block[sel]
                sub[:, ~pattern] = mean_u + eps[rows][sel][:, ~pattern] @ low_u.T
                block[sel] = sub
            out[rows] = block
        return out
