"""WaveNet-style stack of dilated causal convolutions (van den Oord et al. 2016) for text or
8-bit μ-law audio: gated residual layers with skip connections, kernel 2, dilations 1, 2, 4, ...

The receptive field is 1 + sum(dilations) inputs. Generation keeps, for each layer, a queue of
its last `dilation` inputs (Paine et al. 2016, "Fast WaveNet"), so a new token costs one pass of
O(layers · channels²) instead of a convolution over the whole sequence; the queues start as
zeros, exactly like the zero padding of the full convolution, so both give the same logits.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.models.base import register_model
from chainrule.models.sequence import SequenceModel
from chainrule.nn import CausalConv1d


class GatedResidualLayer(nn.Module):
    """h -> h + res(tanh(a) * sigmoid(b)) and skip(tanh(a) * sigmoid(b)), (a, b) = dilated conv(h)."""

    def __init__(self, channels: int, skip_channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = CausalConv1d(channels, 2 * channels, dilation)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def _gate(self, a: torch.Tensor, dim: int) -> torch.Tensor:
        t, s = a.chunk(2, dim)
        return torch.tanh(t) * torch.sigmoid(s)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, C, L) -> (new h, skip (B, S, L))."""
        g = self._gate(self.conv(h), 1)
        return h + self.res(g), self.skip(g)

    def step(self, past: torch.Tensor, now: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One position from (B, C) inputs at t - dilation and t."""
        g = self._gate(self.conv.step(past, now), 1)
        res = nn.functional.linear(g, self.res.weight[:, :, 0], self.res.bias)
        return now + res, nn.functional.linear(g, self.skip.weight[:, :, 0], self.skip.bias)


@register_model("wavenet")
class WaveNet(SequenceModel):
    """`dilations` defaults to 1, 2, ..., 256 twice (receptive field 1,023 inputs)."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_values": 3, "channels": 4, "skip_channels": 4, "dilations": [1, 2]}

    def __init__(
        self,
        num_values: int | None = None,
        vocab: str | None = None,
        channels: int = 64,
        skip_channels: int = 128,
        dilations: list[int] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(num_values, vocab)
        self.remember_config(locals())
        dilations = list(dilations) if dilations is not None else [2**i for i in range(9)] * 2
        if not dilations or any(int(d) < 1 for d in dilations) or min(channels, skip_channels) < 1:
            raise ChainruleError("dilations must be positive integers; channels and skip_channels >= 1")
        self.receptive_field = 1 + sum(int(d) for d in dilations)
        self.eval_chunk = max(256, self.receptive_field)
        self.embedding = nn.Embedding(self.num_values + 1, channels)  # + BOS
        self.layers = nn.ModuleList(GatedResidualLayer(channels, skip_channels, int(d)) for d in dilations)
        self.drop = nn.Dropout(dropout)
        self.out1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.out2 = nn.Conv1d(skip_channels, self.num_values, 1)

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Embedded inputs (B, L, C) -> logits (B, L, V); output i sees inputs i-R+1..i."""
        h, skips = h.transpose(1, 2), 0
        for layer in self.layers:
            h, s = layer(h)
            skips = skips + s
        return self._out(torch.relu(skips).transpose(1, 2))

    def _out(self, s: torch.Tensor) -> torch.Tensor:
        """ReLU'd skip sum (..., S) -> logits (..., V) through the two 1x1 output layers."""
        s = torch.relu(nn.functional.linear(self.drop(s), self.out1.weight[:, :, 0], self.out1.bias))
        return nn.functional.linear(s, self.out2.weight[:, :, 0], self.out2.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.embedding(inputs))

    # -- SequenceModel -----------------------------------------------------------------------
    def begin(self, prefix: torch.Tensor) -> torch.Tensor:
        return prefix[:, -self.receptive_field :]

    def chunk_log_prob(self, x: torch.Tensor, state: torch.Tensor):
        T = x.shape[1]
        seq = torch.cat([state, x], 1)
        logits = self(seq[:, :-1])[:, -T:]
        return self.head.log_prob(logits, x), seq[:, -self.receptive_field :]

    def prefill(self, seq: torch.Tensor):
        """Full convolution over `seq`; the cache holds each layer's last `dilation` inputs in a
        ring indexed by position mod dilation (zeros before the start)."""
        L = seq.shape[1]
        h, skips, queues = self.embedding(seq).transpose(1, 2), 0, []
        for layer in self.layers:
            d = layer.dilation
            last = nn.functional.pad(h, (d, 0))[:, :, -d:]  # inputs at L-d..L-1 (zeros before 0)
            queues.append(last.roll(L % d, dims=2).contiguous())  # position p sits at p mod d
            h, s = layer(h)
            skips = skips + s
        return self._out(torch.relu(skips[:, :, -1])), queues

    def step(self, seq: torch.Tensor, cache):
        t = seq.shape[1] - 1
        h, skips = self.embedding(seq[:, -1]), 0
        for layer, q in zip(self.layers, cache):
            i = t % layer.dilation
            past = q[:, :, i].clone()
            q[:, :, i] = h
            h, s = layer.step(past, h)
            skips = skips + s
        return self._out(torch.relu(skips)), cache
