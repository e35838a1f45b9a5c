"""VAE: variational autoencoder with a Gaussian encoder q(z|x) and a prior p(z) = N(0, I).

The decoder p(x|z) is Bernoulli (binary data), Gaussian (continuous) or Categorical (K-ary).
Training maximises the ELBO, E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the reparameterisation
z = mu + sigma * eps and the KL in closed form.

The decoder's per-dimension family is one of the `Head`s of `chainrule.distributions`.

`log_prob(x, k=...)` is NOT exact: it is the importance-weighted estimate
log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016). Its expectation is a
lower bound on log p(x) that tightens as k grows (k = 1 is a one-sample ELBO); for a fixed
x it is random, and `importance_log_prob` also returns its Monte Carlo standard error.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from chainrule.devices import draw, first_parameter
from chainrule.distributions import Bernoulli, Categorical, Head
from chainrule.distributions import Gaussian as GaussianHead
from chainrule.errors import ChainruleError
from chainrule.models.base import Model, register_model
from chainrule.validation import as_batch, check_completion

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


def decoder_head(likelihood: str, num_values: int, min_scale: float) -> Head:
    """The decoder's per-dimension family p(x_i | z) for a `likelihood` name."""
    if likelihood == "bernoulli":
        return Bernoulli()
    if likelihood == "gaussian":
        return GaussianHead(min_scale)
    return Categorical(num_values)


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

    exact_log_prob = False

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
        self.head = decoder_head(likelihood, self.num_values, self.min_scale)
        self.encoder = mlp([dim, *hidden, 2 * latent])
        self.decoder = mlp([latent, *reversed(hidden), dim * self.head.params_per_dim])

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4, "latent": 2, "hidden": [6]}

    # -- pieces ----------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Check shape and values for the likelihood; return (B, D) in the model's dtype on its
        device."""
        x = as_batch(x, self.event_shape, what)
        self.head.validate(x, what)
        p = first_parameter(self)  # on every batch: dtype and device from one lookup
        return x.to(device=p.device, dtype=p.dtype)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-standard-deviation of q(z|x), each (B, latent)."""
        inp = x / (self.num_values - 1) if self.likelihood == "categorical" else x
        mu, log_sigma = self.encoder(inp).chunk(2, dim=-1)
        return mu, log_sigma

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder head's parameters for codes z (..., latent): (..., D) or (..., D, P)."""
        out = self.decoder(z)
        return out if self.head.params_per_dim == 1 else out.unflatten(-1, (self.dim, -1))

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over dimensions; params from `decoder_params`, x broadcast to them."""
        trail = params.shape[params.dim() - (self.head.params_per_dim > 1) :]  # (P,) or ()
        shape = torch.broadcast_shapes(params.shape[: params.dim() - len(trail)], x.shape)
        return self.head.log_prob(params.expand(*shape, *trail), x.expand(shape)).sum(-1)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] (probabilities for Bernoulli, means for Gaussian, expected value for K-ary):
        the smooth picture people usually show for a VAE."""
        return self.head.mean(self.decoder_params(z))

    # -- objectives ------------------------------------------------------------------------------
    def elbo(
        self, x: torch.Tensor, generator: torch.Generator | None = None, kl_weight: float = 1.0
    ) -> torch.Tensor:
        """One-sample reparameterised ELBO per example (nats), with the KL in closed form (scaled by
        `kl_weight` during warm-up)."""
        x = self.prepare(x)
        mu, log_sigma = self.encode(x)
        eps = draw(torch.randn, mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(log_sigma) * eps
        rec = self.log_likelihood(self.decoder_params(z), x)
        kl = 0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1).sum(-1) - log_sigma.sum(-1)
        return rec - kl if kl_weight == 1.0 else rec - kl_weight * kl

    def training_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """What the trainer maximises: the ELBO, with the KL weight of the warm-up schedule."""
        self.check_cond(cond)
        return self.elbo(x, kl_weight=self.kl_weight)

    def on_train_step(self, step: int) -> None:
        """KL warm-up: weight min(1, step / kl_warmup_steps)."""
        self.kl_weight = min(1.0, step / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0

    def validation_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Validation score: the ELBO (cheap; -ELBO is an upper bound on the NLL), in every mode."""
        self.check_cond(cond)
        return self.elbo(x)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q(z|x): shape (B, k)."""
        p = next(self.parameters())
        eps = draw(
            torch.randn, (k, x.shape[0], self.latent), generator=generator, device=p.device, dtype=p.dtype
        )
        return self._log_weights_at(x, eps)

    def _log_weights_at(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """`log_weights` for given standard normal draws eps (k, B, latent)."""
        mu, log_sigma = self.encode(x)
        z = mu + torch.exp(log_sigma) * eps.to(mu.dtype)  # (k, B, latent)
        log_q = gaussian_log_density(z, mu, log_sigma).sum(-1)
        log_prior = (-0.5 * (z**2 + LOG_2PI)).sum(-1)
        return (self.log_likelihood(self.decoder_params(z), x) + log_prior - log_q).T

    def _chunk_log_weights(self, x: torch.Tensor, k: int, generator) -> torch.Tensor:
        """`log_weights` of one chunk. With gradients on, the chunk is checkpointed: only its
        inputs are kept for the backward pass (which recomputes the rest from the same draws),
        so memory stays bounded by the chunk, not by the batch, in every grad mode."""
        if not torch.is_grad_enabled():
            return self.log_weights(x, k, generator)
        p = next(self.parameters())
        eps = draw(
            torch.randn, (k, x.shape[0], self.latent), generator=generator, device=p.device, dtype=p.dtype
        )
        return checkpoint(self._log_weights_at, x, eps, use_reentrant=False)

    def _importance(self, x, k: int, generator, chunk: int, with_se: bool):
        """The estimate (float64) and, `with_se`, its standard error, from prepared x, decoding at
        most `chunk` (example, draw) pairs at once; differentiable when gradients are on."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ChainruleError(f"k (importance samples) must be a positive integer, got {k!r}")
        est, se = [], []
        step = max(1, chunk // k)
        for i in range(0, x.shape[0], step):
            lw = self._chunk_log_weights(x[i : i + step], k, generator).double()
            lse = torch.logsumexp(lw, dim=1)
            est.append(lse - math.log(k))
            if with_se:
                w = torch.exp(lw - lw.max(dim=1, keepdim=True).values)
                rel = w.std(dim=1) / w.mean(dim=1) / math.sqrt(k) if k > 1 else torch.full_like(lse, math.nan)
                se.append(rel)
        return torch.cat(est), (torch.cat(se) if with_se else None)

    @torch.no_grad()
    def importance_log_prob(
        self, x: torch.Tensor, k: int = 1000, generator: torch.Generator | None = None, chunk: int = 100_000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(estimate, Monte Carlo standard error) of log p(x) per example from k importance draws.

        The standard error is the delta-method one, sd(w) / (sqrt(k) mean(w)) for the weights w;
        examples are processed in groups so that at most `chunk` (example, draw) pairs are decoded
        at once.
        """
        return self._importance(self.prepare(x), k, generator, chunk, with_se=True)

    def log_prob(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        k: int = 1000,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k draws (a stochastic lower bound in
        expectation, tightening with k); nats per example, in the model's dtype. Always the same
        chunked, memory-bounded computation (differentiable when gradients are on). Pass a seeded
        `generator` for a reproducible estimate."""
        self.check_cond(cond)
        x = self.prepare(x)
        return self._importance(x, k, generator, 100_000, with_se=False)[0].to(x.dtype)

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
        self.check_sample_request(n, cond, generator)
        p = next(self.parameters())
        dtype, dev = p.dtype, p.device
        if given is not None or mask is not None:
            given, obs = check_completion(
                given, mask, n, self.event_shape, self.head.validate, dtype=dtype, device=dev
            )
        draws = dict(generator=generator, device=dev, dtype=dtype)
        z = draw(torch.randn, n, self.latent, **draws)
        x = self.head.sample(self.decoder_params(z), generator)
        if given is None:
            return x
        x = torch.where(obs, given, x)
        for _ in range(steps):
            mu, log_sigma = self.encode(x)
            z = mu + torch.exp(log_sigma) * draw(torch.randn, mu.shape, **draws)
            x = torch.where(obs, given, self.head.sample(self.decoder_params(z), generator))
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
