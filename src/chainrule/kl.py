"""KL divergence between two chainrule models: exact (enumeration, or variable elimination for two
Bayesian networks) where possible, else a Monte Carlo estimate with its standard error.

`kl_divergence(p, q)` picks the method and returns {"kl", "stderr", "method", "n"}; the older
`kl_divergence_mc` / `kl_divergence_exact` keep their behaviour.

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
from chainrule.graphical.bn_kl import bn_kl_divergence
from chainrule.graphical.tabular import enumerate_states

#: Largest number of configurations `all_configurations` will build.
MAX_CONFIGURATIONS = 2**22


class DiscreteModel(Protocol):
    """What the KL functions need of a model: `log_prob`, `sample`, `event_shape` and `num_values`
    (every chainrule autoregressive model; tabular models work with the Monte Carlo estimate)."""

    event_shape: tuple[int, ...]
    num_values: int
    value_type: str

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
        diffs.append(_log_ratio(p, q, p.sample(min(batch_size, n - start), generator=generator)))
    r = _mean_and_stderr(torch.cat(diffs))
    return r["kl"], r["stderr"]


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
def _enumerated_log_probs(
    p: DiscreteModel, q: DiscreteModel | None = None, cards: list[int] | None = None
) -> tuple[torch.Tensor, ...]:
    if q is not None:
        _check_pair(p, q)
    if getattr(p, "value_type", "binary") == "continuous":
        raise ChainruleError("exact KL by enumeration needs a discrete model")
    if cards is None:
        x = all_configurations(math.prod(p.event_shape), int(p.num_values))  # models cast it themselves
    else:
        x = enumerate_states(cards).double()
    lp = torch.cat([p.log_prob(b).double().cpu() for b in x.split(65536)])
    if q is None:
        return (lp,)
    return lp, torch.cat([q.log_prob(b).double().cpu() for b in x.split(65536)])


def entropy_exact(p: DiscreteModel) -> float:
    """H(p) = -sum_x p(x) log p(x) over every configuration, in nats."""
    (lp,) = _enumerated_log_probs(p)
    return float(-(lp.exp() * lp).nansum())


def cross_entropy_exact(p: DiscreteModel, q: DiscreteModel) -> float:
    """H(p, q) = -sum_x p(x) log q(x), in nats: the expected NLL under q of data drawn from p."""
    lp, lq = _enumerated_log_probs(p, q)
    pr = lp.exp()
    return float(-(torch.where(pr > 0, pr * lq, 0.0)).sum())


def kl_divergence_exact(p: DiscreteModel, q: DiscreteModel, cards: list[int] | None = None) -> float:
    """KL(p || q) = sum_x p(x) (log p(x) - log q(x)) over every configuration, in nats (`cards`:
    each dimension's number of values, when they differ)."""
    lp, lq = _enumerated_log_probs(p, q, cards)
    pr = lp.exp()
    return float(torch.where(pr > 0, pr * (lp - lq), 0.0).sum())


#: Largest support that `kl_divergence` sums over exactly (larger ones get Monte Carlo).
MAX_ENUMERATED = 2**20


def _support(p: DiscreteModel) -> list[int] | None:
    """Cardinalities of p's variables when its support can be enumerated, else None."""
    if p.value_type == "continuous" or None in tuple(p.event_shape):
        return None
    return p.values_per_dimension()  # declared: a Bayesian network's variables differ in size


@torch.no_grad()
def kl_divergence(
    p: DiscreteModel,
    q: DiscreteModel,
    *,
    data: torch.Tensor | None = None,
    n: int = 20_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
    monte_carlo: bool = False,
) -> dict[str, float | str | int]:
    """KL(p || q) in nats as {"kl", "stderr", "method", "n"}, the best way the pair allows
    (`monte_carlo=True`: by sampling even where an exact value exists).

    With `data` (draws from p): the Monte Carlo average over them ("monte-carlo"), always. Else
    two Bayesian networks over the same variables: exact by variable elimination (method
    "variable-elimination", any size); a discrete p whose support has at most MAX_ENUMERATED
    configurations: exact by enumeration ("enumeration"); otherwise Monte Carlo from `n` samples
    of p, with its standard error.
    """
    _check_pair(p, q)
    if data is None and p.directed_graph and q.directed_graph and not monte_carlo:
        return {"kl": bn_kl_divergence(p, q), "stderr": 0.0, "method": "variable-elimination", "n": 0}
    cards = _support(p) if data is None and not monte_carlo else None
    if cards is not None and math.prod(cards) <= MAX_ENUMERATED:
        kl = kl_divergence_exact(p, q, cards)
        return {"kl": kl, "stderr": 0.0, "method": "enumeration", "n": math.prod(cards)}
    if data is not None:
        if len(data) < 2:
            raise ChainruleError("data must hold at least two draws from p (the standard error needs two)")
        d = torch.cat([_log_ratio(p, q, b) for b in data.split(batch_size)])
        return {**_mean_and_stderr(d), "method": "monte-carlo", "n": len(d)}
    est, se = kl_divergence_mc(p, q, n, generator, batch_size=batch_size)
    return {"kl": est, "stderr": se, "method": "monte-carlo", "n": n}


def _log_ratio(p: DiscreteModel, q: DiscreteModel, x: torch.Tensor) -> torch.Tensor:
    return p.log_prob(x).double().cpu() - q.log_prob(x).double().cpu()


def _mean_and_stderr(d: torch.Tensor) -> dict[str, float]:
    if not torch.isfinite(d).all():
        raise ChainruleError(
            "log p(x) - log q(x) is infinite on a sample: q gives it probability 0, KL = inf"
        )
    return {"kl": float(d.mean()), "stderr": float(d.std(unbiased=True) / math.sqrt(len(d)))}
