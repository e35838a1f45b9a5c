"""KL divergence between two chainrule models: a Monte Carlo estimate, and exact by enumeration.

KL(p || q) = E_{x~p}[log p(x) - log q(x)]. The Monte Carlo estimate averages that difference
over n samples from p; it is unbiased and its standard error falls as 1/sqrt(n). For small
discrete models (values^dim configurations) `kl_divergence_exact` sums over every
configuration, which also gives the entropy H(p) and the cross-entropy H(p, q) = H(p) + KL(p || q),
the quantity that maximum-likelihood training on samples from p minimises.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.tabular import enumerate_states

#: Largest number of configurations `all_configurations` will build.
MAX_CONFIGURATIONS = 2**22


class DiscreteModel(Protocol):
    """What the KL functions need of a model: `log_prob`, `sample`, `event_shape` and `num_values`
    (every chainrule autoregressive model; tabular models work with the Monte Carlo estimate)."""

    event_shape: tuple[int, ...]
    num_values: int

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of each row, in nats."""
        ...

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` independent draws."""
        ...


def _check_pair(p: DiscreteModel, q: DiscreteModel) -> None:
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ChainruleError(f"p has event shape {tuple(p.event_shape)} but q has {tuple(q.event_shape)}")


@torch.no_grad()
def kl_divergence_mc(
    p: DiscreteModel,
    q: DiscreteModel,
    n: int,
    generator: torch.Generator | None = None,
    *,
    batch_size: int = 10_000,
) -> tuple[float, float]:
    """Monte Carlo KL(p || q) from `n` samples of p: (estimate, standard error), in nats."""
    _check_pair(p, q)
    if not isinstance(n, int) or n < 2:
        raise ChainruleError(f"n must be an integer >= 2 (the standard error needs two samples), got {n!r}")
    diffs = []
    for start in range(0, n, batch_size):
        x = p.sample(min(batch_size, n - start), generator=generator)
        diffs.append(p.log_prob(x).double() - q.log_prob(x).double())
    d = torch.cat(diffs)
    if not torch.isfinite(d).all():
        raise ChainruleError(
            "log p(x) - log q(x) is infinite on a sample: q gives it probability 0, KL = inf"
        )
    return float(d.mean()), float(d.std(unbiased=True) / math.sqrt(n))


def all_configurations(dim: int, num_values: int = 2, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Every point of {0..num_values-1}^dim, (num_values^dim, dim), in lexicographic order."""
    count = num_values**dim
    if count > MAX_CONFIGURATIONS:
        raise ChainruleError(
            f"{num_values}^{dim} = {count} configurations is too many to enumerate (limit"
            f" {MAX_CONFIGURATIONS}); use kl_divergence_mc"
        )
    return enumerate_states([num_values] * dim).to(dtype)


@torch.no_grad()
def _enumerated_log_probs(p: DiscreteModel, q: DiscreteModel | None = None) -> tuple[torch.Tensor, ...]:
    if q is not None:
        _check_pair(p, q)
    if getattr(p, "value_type", "binary") == "continuous":
        raise ChainruleError("exact KL by enumeration needs a discrete model")
    dim = math.prod(p.event_shape)
    x = all_configurations(dim, int(p.num_values))  # models cast it to their own dtype
    lp = torch.cat([p.log_prob(b).double() for b in x.split(65536)])
    if q is None:
        return (lp,)
    return lp, torch.cat([q.log_prob(b).double() for b in x.split(65536)])


def entropy_exact(p: DiscreteModel) -> float:
    """H(p) = -sum_x p(x) log p(x) over every configuration, in nats."""
    (lp,) = _enumerated_log_probs(p)
    return float(-(lp.exp() * lp).nansum())


def cross_entropy_exact(p: DiscreteModel, q: DiscreteModel) -> float:
    """H(p, q) = -sum_x p(x) log q(x), in nats: the expected NLL under q of data drawn from p."""
    lp, lq = _enumerated_log_probs(p, q)
    pr = lp.exp()
    return float(-(torch.where(pr > 0, pr * lq, 0.0)).sum())


def kl_divergence_exact(p: DiscreteModel, q: DiscreteModel) -> float:
    """KL(p || q) = sum_x p(x) (log p(x) - log q(x)) over every configuration, in nats."""
    lp, lq = _enumerated_log_probs(p, q)
    pr = lp.exp()
    return float(torch.where(pr > 0, pr * (lp - lq), 0.0).sum())
