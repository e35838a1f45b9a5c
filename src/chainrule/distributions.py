"""Heads: the family of each one-dimensional conditional of an autoregressive model.

A head turns the conditioner's raw parameters for one or more dimensions into a
log-probability and a sample. Sampling draws exactly one uniform per (example, dimension),
so any two samplers that visit dimensions in the same order with the same generator consume
the same random stream and return identical samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chainrule.validation import check_discrete


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
