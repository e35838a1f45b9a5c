"""VAE: variational autoencoder with a Gaussian encoder q(z|x) and a prior p(z) = N(0, I).

The decoder p(x|z) is Bernoulli (binary data), Gaussian (continuous) or Categorical (K-ary).
Training maximises the ELBO, E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the reparameterisation
z = mu + sigma * eps and the KL in closed form.

`log_prob(x, k)` is NOT exact: it is the importance-weighted estimate
log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016). Its expectation is a
lower bound on log p(x) that tightens as k grows (k = 1 is a one-sample ELBO); for a fixed
x it is random, and `importance_log_prob` also returns its Monte Carlo standard error.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.devices import draw
from chainrule.errors import ChainruleError
from chainrule.models.base import Model, register_model
from chainrule.validation import as_batch, check_discrete, check_finite, check_num_samples

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
LOG_2PI = math.log(2 * math.pi)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, exp(log_scale)^2)."""
    return -0.5 * (((x - mean) * torch.exp(-log_scale)) ** 2 + LOG_2PI) - log_scale


@register_model("vae")
class VAE(Model):
    """MLP encoder and decoder with ReLU `hidden` layers and a `latent`-dimensional Gaussian code.

    `likelihood`: "bernoulli" for {0,1} data, "gaussian" for real data (per-dimension mean and
    log-scale, the scale floored at `min_scale`), "categorical" for {0..K-1} data with
    `num_values` = K (the encoder sees x / (K-1)). `kl_warmup_steps` > 0 scales the KL term
    linearly from 0 to 1 over that many training steps (a common remedy for inactive latents);
    evaluation always uses the full ELBO.
    """

    def __init__(
        self,
        dim: int,
        latent: int = 50,
        hidden: list[int] | int = 500,
        likelihood: str = "bernoulli",
        num_values: int = 2,
        min_scale: float = 1e-3,
        kl_warmup_steps: int = 0,
        image_shape: list[int] | None = None,
    ):
        super().__init__()
        self.remember_config(locals())
        if likelihood not in LIKELIHOODS:
            raise ChainruleError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        if dim < 1 or latent < 1 or min(hidden, default=1) < 1:
            raise ChainruleError("dim, latent and hidden sizes must be positive")
        if likelihood == "bernoulli":
            num_values = 2
        elif likelihood == "categorical" and num_values < 2:
            raise ChainruleError("a categorical VAE needs num_values >= 2")
        self.dim, self.latent, self.likelihood = int(dim), int(latent), likelihood
        self.num_values = int(num_values) if likelihood != "gaussian" else 0
        self.value_type = {"bernoulli": "binary", "gaussian": "continuous", "categorical": "categorical"}[
            likelihood
        ]
        self.event_shape = (self.dim,)
        self.image_shape = tuple(image_shape) if image_shape else None
        self.min_scale = float(min_scale)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.kl_weight = 1.0
        per_dim = {"bernoulli": 1, "gaussian": 2, "categorical": self.num_values}[likelihood]
        self.encoder = mlp([dim, *hidden, 2 * latent])
        self.decoder = mlp([latent, *reversed(hidden), dim * per_dim])

    # -- pieces ----------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Check shape and values for the likelihood; return (B, D) in the model's dtype on its
        device."""
        x = as_batch(x, self.event_shape, what)
        if self.likelihood == "gaussian":
            check_finite(x, what)
        else:
            check_discrete(x, self.num_values, what)
        p = next(self.parameters())
        return x.to(device=p.device, dtype=p.dtype)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-standard-deviation of q(z|x), each (B, latent)."""
        inp = x / (self.num_values - 1) if self.likelihood == "categorical" else x
        mu, log_sigma = self.encoder(inp).chunk(2, dim=-1)
        return mu, log_sigma

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder outputs for codes z (..., latent): (..., D) or (..., D, P)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return out
        return out.unflatten(-1, (self.dim, -1))

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over dimensions; params from `decoder_params`, x broadcast to them."""
        if self.likelihood == "bernoulli":
            params, x = torch.broadcast_tensors(params, x)
            return -F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(-1)
        if self.likelihood == "gaussian":
            mean, raw = params.unbind(-1)
            log_scale = torch.log(F.softplus(raw) + self.min_scale)
            return gaussian_log_density(x, mean, log_scale).sum(-1)
        logp = torch.log_softmax(params, dim=-1)
        logp, idx = torch.broadcast_tensors(logp, x.long().unsqueeze(-1))
        return logp.gather(-1, idx[..., :1]).squeeze(-1).sum(-1)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] (probabilities for Bernoulli, means for Gaussian, expected value for K-ary):
        the smooth picture people usually show for a VAE."""
        params = self.decoder_params(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params)
        if self.likelihood == "gaussian":
            return params[..., 0]
        values = torch.arange(self.num_values, dtype=params.dtype, device=params.device)
        return torch.softmax(params, -1) @ values

    def _draw(self, params: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Sample x ~ p(x|z) from decoder params (one uniform or normal per dimension), drawn on
        the generator's device (chainrule.devices) and used on the params' device."""
        draws = dict(generator=generator, device=params.device, dtype=params.dtype)
        if self.likelihood == "bernoulli":
            u = draw(torch.rand, params.shape, **draws)
            return (u < torch.sigmoid(params)).to(params.dtype)
        if self.likelihood == "gaussian":
            mean, raw = params.unbind(-1)
            eps = draw(torch.randn, mean.shape, **draws)
            return mean + (F.softplus(raw) + self.min_scale) * eps
        cdf = torch.softmax(params, -1).cumsum(-1)
        u = draw(torch.rand, params.shape[:-1], **draws)
        return (cdf < u.unsqueeze(-1)).sum(-1).clamp_(max=self.num_values - 1).to(params.dtype)

    # -- objectives ------------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample reparameterised ELBO per example (nats), with the KL in closed form."""
        x = self.prepare(x)
        mu, log_sigma = self.encode(x)
        eps = draw(torch.randn, mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(log_sigma) * eps
        rec = self.log_likelihood(self.decoder_params(z), x)
        kl = 0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1).sum(-1) - log_sigma.sum(-1)
        return rec - kl

    def training_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """What the trainer maximises: the ELBO, with the KL weight of the warm-up schedule."""
        if self.kl_weight == 1.0:
            return self.elbo(x)
        x = self.prepare(x)
        mu, log_sigma = self.encode(x)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        kl = 0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1).sum(-1) - log_sigma.sum(-1)
        return self.log_likelihood(self.decoder_params(z), x) - self.kl_weight * kl

    def before_train_step(self, step: int) -> None:
        """KL warm-up: weight min(1, step / kl_warmup_steps)."""
        self.kl_weight = min(1.0, step / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0

    def validation_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Validation score: the ELBO (cheap; -ELBO is an upper bound on the NLL)."""
        return self.elbo(x)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q(z|x): shape (B, k)."""
        mu, log_sigma = self.encode(x)
        eps = draw(torch.randn, (k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(log_sigma) * eps  # (k, B, latent)
        log_q = gaussian_log_density(z, mu, log_sigma).sum(-1)
        log_prior = (-0.5 * (z**2 + LOG_2PI)).sum(-1)
        return (self.log_likelihood(self.decoder_params(z), x) + log_prior - log_q).T

    @torch.no_grad()
    def importance_log_prob(
        self, x: torch.Tensor, k: int = 1000, generator: torch.Generator | None = None, chunk: int = 100_000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(estimate, Monte Carlo standard error) of log p(x) per example from k importance draws.

        The standard error is the delta-method one, sd(w) / (sqrt(k) mean(w)) for the weights w;
        examples are processed in groups so that at most `chunk` (example, draw) pairs are decoded
        at once.
        """
        if not isinstance(k, int) or k < 1:
            raise ChainruleError(f"k (importance samples) must be a positive integer, got {k!r}")
        x = self.prepare(x)
        est, se = [], []
        step = max(1, chunk // k)
        for i in range(0, x.shape[0], step):
            lw = self.log_weights(x[i : i + step], k, generator).double()
            lse = torch.logsumexp(lw, dim=1)
            est.append(lse - math.log(k))
            w = torch.exp(lw - lw.max(dim=1, keepdim=True).values)
            rel = w.std(dim=1) / w.mean(dim=1) / math.sqrt(k) if k > 1 else torch.full_like(lse, math.nan)
            se.append(rel)
        return torch.cat(est), torch.cat(se)

    def log_prob(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        k: int = 1000,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k draws (a stochastic lower bound in
        expectation, tightening with k); nats per example. Pass a seeded `generator` for a
        reproducible estimate."""
        if torch.is_grad_enabled():
            x = self.prepare(x)
            return torch.logsumexp(self.log_weights(x, k, generator), dim=1) - math.log(k)
        return self.importance_log_prob(x, k, generator)[0].to(next(self.parameters()).dtype)

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int = 50,
    ) -> torch.Tensor:
        """Ancestral samples z ~ N(0, I), x ~ p(x|z). With `given`/`mask` (True = observed),
        approximate completion by `steps` rounds of pseudo-Gibbs sampling (Rezende et al. 2014):
        encode, decode, redraw only the unobserved values. Not exact, unlike the autoregressive
        models' completion."""
        check_num_samples(n)
        p = next(self.parameters())
        dtype, dev = p.dtype, p.device
        draws = dict(generator=generator, device=dev, dtype=dtype)
        z = draw(torch.randn, n, self.latent, **draws)
        x = self._draw(self.decoder_params(z), generator)
        if given is None and mask is None:
            return x
        if given is None or mask is None:
            raise ChainruleError("completion needs both `given` and `mask`")
        given = self.prepare(given, "given").to(dev)
        obs = torch.as_tensor(mask, device=dev).bool()
        if obs.numel() == self.dim:
            obs = obs.reshape(1, self.dim).expand_as(given)
        elif obs.numel() != given.numel():
            raise ChainruleError(
                f"mask has shape {tuple(obs.shape)}; expected {self.event_shape} or like `given`"
            )
        obs = obs.reshape(given.shape)
        if n != given.shape[0]:
            raise ChainruleError(f"n={n} but `given` holds {given.shape[0]} examples")
        x = torch.where(obs, given, x)
        for _ in range(steps):
            mu, log_sigma = self.encode(x)
            z = mu + torch.exp(log_sigma) * draw(torch.randn, mu.shape, **draws)
            x = torch.where(obs, given, self._draw(self.decoder_params(z), generator))
        return x

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = mean of q(z|x)]: how well the code keeps the input."""
        return self.decode_mean(self.encode(self.prepare(x))[0])

    @torch.no_grad()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoded means along the straight line between the codes of x_a and x_b: (steps, D)."""
        if steps < 2:
            raise ChainruleError("interpolation needs at least 2 steps")
        za = self.encode(self.prepare(x_a))[0][0]
        zb = self.encode(self.prepare(x_b))[0][0]
        t = torch.linspace(0, 1, steps, dtype=za.dtype, device=za.device).unsqueeze(1)
        return self.decode_mean((1 - t) * za + t * zb)
