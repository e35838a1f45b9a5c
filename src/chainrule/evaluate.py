"""Evaluation: mean negative log-likelihood in nats and bits/dim, with its standard error."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from chainrule.models.base import Model


@dataclass
class NLLReport:
    """`nll_nats` = mean over examples of -log p(x); `stderr_nats` = sample std / sqrt(n)."""

    nll_nats: float
    stderr_nats: float
    bits_per_dim: float
    n: int
    dim: int

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)


@torch.no_grad()
def evaluate_nll(model: Model, x: torch.Tensor, batch_size: int = 1000, **log_prob_kwargs) -> NLLReport:
    """Exact (or, for latent models, estimated) NLL of `x` under `model`, batched."""
    model.eval()
    parts = [
        model.log_prob(x[i : i + batch_size], **log_prob_kwargs).double()
        for i in range(0, len(x), batch_size)
    ]
    lp = torch.cat(parts)
    n = lp.numel()
    dim = math.prod(model.event_shape)
    nll = float(-lp.mean())
    se = float(lp.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return NLLReport(nll, se, nll / math.log(2) / dim, n, dim)
