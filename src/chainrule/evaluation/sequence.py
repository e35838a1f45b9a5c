"""NLL of token streams (text, audio): every token scored once, with the state carried.

A stream is cut into `streams` contiguous parts walked in parallel, chunk by chunk; validation
during training (`chainrule.training`) walks its text the same way, so `val_nll` and the test
figure are the same quantity: total NLL / number of tokens (nats per character for text).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from chainrule.errors import ChainruleError
from chainrule.evaluation.nll import eval_mode

#: Parallel streams used to walk validation and test text.
EVAL_STREAMS = 16


def eval_chunks(
    tokens: torch.Tensor, streams: int, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Consecutive pieces (rows, <= chunk) of `rows` contiguous parts of `tokens` of
    ceil(n / streams) tokens each, the last part padded at its end; yields (ids, valid, fresh)
    where `valid` marks real tokens (padding comes after them, so it never affects their
    scores) and `fresh` is True on the first piece. Every token is in exactly one piece."""
    n = tokens.numel()
    length = -(-n // streams)
    rows = -(-n // length)
    padded = torch.zeros(rows * length, dtype=tokens.dtype)
    padded[:n] = tokens
    valid = (torch.arange(rows * length) < n).view(rows, length)
    parts = padded.view(rows, length)
    for i in range(0, length, chunk):
        yield parts[:, i : i + chunk], valid[:, i : i + chunk], i == 0


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
def evaluate_sequence(
    model, tokens: torch.Tensor, streams: int = EVAL_STREAMS, unit: str = "char"
) -> SequenceReport:
    """Score a whole 1-D token stream with a sequence model: `streams` contiguous parts (the last
    one shorter) walked in parallel, chunk by chunk with the state carried, each part starting
    from nothing. Every token is scored once, with as much context as the model allows. The
    model's train/eval mode is restored afterwards."""
    if tokens.dim() != 1 or tokens.numel() == 0:
        raise ChainruleError(f"expected a non-empty 1-D token stream, got shape {tuple(tokens.shape)}")
    tokens = model.tokens(tokens[None], "evaluation text")[0].cpu()
    total, state, rows, bad = torch.zeros((), dtype=torch.float64), None, 0, 0
    with eval_mode(model):
        for x, valid, fresh in eval_chunks(tokens, streams, model.eval_chunk):
            if fresh:
                rows = x.shape[0]
                state = model.begin(model.bos_column(rows))
            lp, state = model.chunk_log_prob(x.to(model._device()), state)
            lp = lp.double().cpu()[valid]
            bad += int((~torch.isfinite(lp)).sum())
            total += lp.sum()
    n = tokens.numel()
    if bad:  # a NaN total printed as a number would be a silent wrong answer
        raise ChainruleError(
            f"{bad} of {n} tokens got a NaN or infinite log-likelihood: the model's weights or the"
            " data are likely broken (a diverged training run leaves NaN weights); no NLL reported"
        )
    nats = float(-total) / n
    return SequenceReport(nats, nats / math.log(2), float(-total), n, rows, unit)
