"""The interface shared by the tabular models over discrete variables, and their common helpers.

Data are integer codes: a tensor of shape (B, n) whose column j holds the state index of
variable j (0 .. cardinality-1); -1 marks a missing value where a model can marginalise it.
Every model is a contract `Model` (value type "categorical", event shape (n,), exact log_prob and
exact completion, conditioned on nothing) with `log_prob` (nats), `sample` (also completing the
unobserved part of `given` exactly), `fit` (maximum likelihood by counting, with Dirichlet
smoothing `alpha`) and `num_parameters` (free parameters: each distribution over k states has
k - 1). Tables are float64 buffers, so `chainrule.persistence.save/load` round-trips them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.validation import check_completion

MISSING = -1


class TabularModel(Model):
    """A distribution over n discrete variables with finite cardinalities (integer codes, -1 missing).

    Subclasses call `_declare(cardinalities)` once the cardinalities are known: `num_values` is then
    the largest cardinality and `event_shape` (n,)."""

    names: list[str]
    cardinalities: list[int]
    value_type = "categorical"
    exact_log_prob = True
    exact_completion = True
    conditioned_on = "nothing"

    def _declare(self, cardinalities: Sequence[int]) -> None:
        self.num_values = max(cardinalities)
        self.event_shape = (len(cardinalities),)

    def values_per_dimension(self) -> list[int]:
        """Each variable's own cardinality (they differ: `num_values` is only the largest)."""
        return list(self.cardinalities)

    def _device(self) -> torch.device:
        """Where the tables live (results go there); the computation itself runs on the CPU."""
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def num_variables(self) -> int:
        """Number of variables n (columns of the data)."""
        return len(self.cardinalities)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) of each row of the integer-coded batch x (B, n), in nats; shape (B,)."""
        raise NotImplementedError

    def fit(self, data: torch.Tensor, alpha: float = 1.0) -> TabularModel:
        """Maximum likelihood (alpha = 0) or posterior mean under a symmetric Dirichlet(alpha)
        prior from complete data; returns self."""
        raise NotImplementedError

    def num_parameters(self) -> int:
        """Number of free parameters."""
        raise NotImplementedError

    def log_likelihood(self, x: torch.Tensor) -> float:
        """Total log-likelihood of a data set, in nats."""
        return float(self.log_prob(x).sum())

    def check_data(self, x: torch.Tensor, allow_missing: bool = False, what: str = "data") -> torch.Tensor:
        """Validate integer codes and return them as a long tensor of shape (B, n)."""
        return check_codes(x, self.cardinalities, allow_missing=allow_missing, what=what, names=self.names)


def completion_codes(
    given: torch.Tensor | None, mask: torch.Tensor | None, n: int, cards: Sequence[int], names: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (codes, observed) for completion, both (n, num_variables) on the CPU, by the one
    completion check (chainrule.validation.check_completion): `mask` is True where observed,
    shaped (num_variables,) or like `given`; unobserved entries of `given` may hold anything, NaN
    included (they come back as -1, missing)."""

    def validate(values: torch.Tensor, what: str) -> None:
        check_codes(values, cards, allow_missing=True, what=what, names=names)

    if isinstance(given, torch.Tensor):
        given = given.detach().cpu()
        given = given.unsqueeze(0) if given.dim() == 1 else given
    codes, obs = check_completion(given, mask, n, (len(cards),), validate)
    fill = torch.full((), MISSING, dtype=torch.long)
    return torch.where(obs, codes.long(), fill), obs.cpu().clone()


def default_names(n: int, names: Sequence[str] | None = None) -> list[str]:
    """`names` checked for length and uniqueness, or x0, x1, ... by default."""
    if names is None:
        return [f"x{i}" for i in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ChainruleError(f"got {len(names)} names for {n} variables")
    if len(set(names)) != n:
        dup = sorted({s for s in names if names.count(s) > 1})
        raise ChainruleError(f"variable names must be unique; repeated: {dup}")
    return names


def check_cardinalities(cardinalities: Sequence[int]) -> list[int]:
    cards = [int(k) for k in cardinalities]
    if not cards:
        raise ChainruleError("a tabular model needs at least one variable")
    bad = [k for k in cards if k < 1]
    if bad or any(int(k) != k for k in cardinalities):
        raise ChainruleError(f"cardinalities must be positive integers, got {list(cardinalities)}")
    return cards


def check_codes(
    x: torch.Tensor,
    cards: Sequence[int],
    allow_missing: bool = False,
    what: str = "data",
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Refuse non-tensors, wrong shapes, non-integers and out-of-range states, with clear messages."""
    if not isinstance(x, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor of integer codes, got {type(x).__name__}")
    n = len(cards)
    if x.dim() == 1 and x.shape[0] == n:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[1] != n:
        raise ChainruleError(f"{what} has shape {tuple(x.shape)}; expected (batch, {n})")
    if x.shape[0] == 0:
        raise ChainruleError(f"{what} is empty")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ChainruleError(f"{what} contains NaN or infinite values; mark missing values with -1")
        if (x != torch.round(x)).any():
            raise ChainruleError(
                f"{what} must hold integer state codes; found {x[x != torch.round(x)][0].item()}"
            )
    elif x.dtype == torch.bool or x.is_complex():
        raise ChainruleError(f"{what} must hold integer state codes, got dtype {x.dtype}")
    x = x.long()
    card = torch.tensor(cards, dtype=torch.long)
    low = MISSING if allow_missing else 0
    bad = (x < low) | (x >= card)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        label = names[col] if names is not None else f"column {col}"
        v = int(x[row, col])
        hint = "" if allow_missing or v != MISSING else " (missing values are not allowed here)"
        raise ChainruleError(
            f"{what}[{row}, {col}] = {v} is not a state of {label} (0..{cards[col] - 1}){hint};"
            f" {int(bad.sum())} bad value(s)"
        )
    return x


def counts(codes: torch.Tensor, cards: Sequence[int]) -> torch.Tensor:
    """Contingency table of the rows of `codes` (B, k) over states with cardinalities `cards`."""
    size = math.prod(cards)
    flat = torch.zeros(codes.shape[0], dtype=torch.long)
    for j, k in enumerate(cards):
        flat = flat * k + codes[:, j]
    return torch.bincount(flat, minlength=size).to(torch.float64).reshape(tuple(cards))


def smoothed(table: torch.Tensor, alpha: float) -> torch.Tensor:
    """Normalise counts + alpha over the last axis; rows with no mass at all become uniform."""
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ChainruleError(f"alpha must be a finite number >= 0, got {alpha}")
    t = table + alpha
    total = t.sum(-1, keepdim=True)
    uniform = torch.full_like(t, 1.0 / t.shape[-1])
    return torch.where(total > 0, t / total.clamp_min(1e-300), uniform)


def sample_rows(cdf: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One categorical draw per row of `cdf` (rows normalised to end at exactly 1)."""
    u = torch.rand(cdf.shape[0], 1, generator=generator, dtype=cdf.dtype)
    return (cdf <= u).sum(-1).clamp_max(cdf.shape[-1] - 1)


def normalised_cdf(probs: torch.Tensor) -> torch.Tensor:
    """Cumulative sums over the last axis, divided by the total so that each row ends at 1 exactly.

    (A zero-probability state then has cdf equal to its predecessor's and can never be drawn.)"""
    c = probs.cumsum(-1)
    return c / c[..., -1:]


def enumerate_states(cards: Sequence[int]) -> torch.Tensor:
    """Every joint state of variables with cardinalities `cards`, as codes (prod(cards), n)."""
    return torch.tensor(list(itertools.product(*(range(k) for k in cards))), dtype=torch.long)
