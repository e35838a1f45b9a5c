"""Evaluation: mean negative log-likelihood in nats and bits/dim, with its standard error."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from chainrule.devices import model_device
from chainrule.errors import ChainruleError
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
def evaluate_nll(
    model: Model, x: torch.Tensor, batch_size: int = 1000, cond: torch.Tensor | None = None, **log_prob_kwargs
) -> NLLReport:
    """Exact (or, for latent models, estimated) NLL of `x` under `model`, batched; `cond` (one
    row per example, e.g. class labels) for conditional models. Each batch (and its cond) is
    moved to the model's device and its log-likelihoods back to the CPU in float64, so a model on
    a GPU is evaluated on CPU-held data."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ChainruleError(f"batch size must be a positive integer, got {batch_size!r}")
    if len(x) == 0:
        raise ChainruleError("cannot evaluate an empty data set")
    model.eval()
    device = model_device(model)
    if cond is not None:
        log_prob_kwargs["cond"] = None  # filled per batch below
    parts = []
    for i in range(0, len(x), batch_size):
        if cond is not None:
            log_prob_kwargs["cond"] = cond[i : i + batch_size].to(device)
        parts.append(model.log_prob(x[i : i + batch_size].to(device), **log_prob_kwargs).double().cpu())
    lp = torch.cat(parts)
    n = lp.numel()
    dim = math.prod(model.event_shape)
    nll = float(-lp.mean())
    se = float(lp.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return NLLReport(nll, se, nll / math.log(2) / dim, n, dim)


def split_condition(model: Model, dataset, split: str) -> torch.Tensor | None:
    """The labels of `split` for a class-conditional model (None for other models), with a clear
    error when the data set has none."""
    if not model.class_conditional:
        return None
    labels = getattr(dataset, "labels", {}) or {}
    if split not in labels:
        raise ChainruleError(
            f"the model is class-conditional but data set {getattr(dataset, 'name', '?')!r} has no"
            f" labels for its {split} split"
        )
    return labels[split]


@dataclass
class SequenceReport:
    """Total NLL of a token stream / its length: nats and bits per token (per character for
    text). `tokens` counts every scored token; each is scored exactly once."""

    nats_per_token: float
    bits_per_token: float
    total_nats: float
    tokens: int
    streams: int
    unit: str = "char"

    def as_dict(self) -> dict:
        u = self.unit
        return {
            f"nats_per_{u}": self.nats_per_token,
            f"bits_per_{u}": self.bits_per_token,
            "total_nats": self.total_nats,
            f"{u}s": self.tokens,
            "streams": self.streams,
        }


@torch.no_grad()
def evaluate_sequence(model, tokens: torch.Tensor, streams: int = 16, unit: str = "char") -> SequenceReport:
    """Score a whole 1-D token stream with a sequence model: `streams` contiguous parts (the last
    one shorter) walked in parallel, chunk by chunk with the state carried, each part starting
    from nothing. Every token is scored once, with as much context as the model allows."""
    from chainrule.errors import ChainruleError
    from chainrule.sequence_training import eval_chunks

    if tokens.dim() != 1 or tokens.numel() == 0:
        raise ChainruleError(f"expected a non-empty 1-D token stream, got shape {tuple(tokens.shape)}")
    tokens = model.tokens(tokens[None], "evaluation text")[0].cpu()
    model.eval()
    total, state, rows = torch.zeros((), dtype=torch.float64), None, 0
    for x, valid, fresh in eval_chunks(tokens, streams, model.eval_chunk):
        if fresh:
            rows = x.shape[0]
            state = model.begin(model.bos_column(rows))
        lp, state = model.chunk_log_prob(x.to(model._device()), state)
        total += lp.double().cpu()[valid].sum()
    n = tokens.numel()
    nats = float(-total) / n
    return SequenceReport(nats, nats / math.log(2), float(-total), n, rows, unit)
