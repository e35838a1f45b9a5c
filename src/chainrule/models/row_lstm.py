"""Row LSTM (PixelRNN, van den Oord et al. 2016, section 3.1).

Each layer processes the image one row at a time: the gates of row i are a masked 1 × 3
input-to-state convolution of the layer input on row i (type B: the pixel to the left, and the
current pixel's allowed colours) plus an unmasked 1 × 3 state-to-state convolution of the hidden
state of row i - 1; the cell state runs down the columns (c of row i from c of row i - 1).

The receptive field is a *triangle*: through the state, pixel (i, j) sees row i - k only
between columns j - k - 1 and j + k (widened by the input layer's kernel), and in its own row only
the few pixels the input convolutions reach. Pixels further right in the rows above, or further
left in the current row, are allowed by the raster order but never seen; tests/test_pixelrnn.py
computes this field and checks the gradients match it exactly.

Fast sampling carries the state: at the start of row i every layer's state-to-state convolution
of row i - 1 is computed once; each sub-pixel then costs one LSTM step per layer at that pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.masked_conv import MaskedConv2d
from chainrule.memory_format import channels_last
from chainrule.models.base import register_model
from chainrule.models.image import SamplerCache
from chainrule.models.lstm_scan import lstm_scan
from chainrule.models.pixelcnn import pointwise
from chainrule.models.pixelrnn import PixelRNN, lstm_cell


class RowLSTMLayer(nn.Module):
    """x + 1×1_B(h) where h is the Row LSTM's hidden state over the input map x.

    `state_to_state` is the 1 × 3 kernel over the row above as a (4h, 3h) matrix acting on the
    states [above-left, above, above-right]; the recurrence runs channel-last so each row's step
    is one matrix product."""

    def __init__(self, channels: int, colours: int) -> None:
        super().__init__()
        self.input_to_state = MaskedConv2d(channels, 4 * channels, (1, 3), "B", colours, out_repeat=4)
        bound = 1 / math.sqrt(3 * channels)  # nn.Conv1d's default initialisation for a 3-tap kernel
        self.state_to_state = nn.Parameter(torch.empty(4 * channels, 3 * channels).uniform_(-bound, bound))
        self.out = MaskedConv2d(channels, channels, 1, "B", colours)

    def from_above(self, h: torch.Tensor) -> torch.Tensor:
        """State-to-state part (..., W, 4h) of a row from the hidden states (..., W, h) above it."""
        padded = F.pad(h, (0, 0, 1, 1))  # zero states left and right of the image
        return torch.cat([padded[..., :-2, :], h, padded[..., 2:, :]], -1) @ self.state_to_state.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, height, width = x.shape
        x = channels_last(x)  # the thin 1 × 3 convolution runs natively on it (see memory_format)
        pre = self.input_to_state(x).permute(2, 0, 3, 1).contiguous()  # H rows (B, W, 4h)
        # state-to-state: [above-left, above, above-right] of the previous row: offsets -1, 0, +1
        states = lstm_scan(pre[None], self.state_to_state.t()[None], (-1, 0, 1))[0]  # (H, B, W, h)
        return x + self.out(channels_last(states.permute(1, 3, 0, 2)))


@register_model("row-lstm")
class RowLSTM(PixelRNN):
    """PixelRNN with Row LSTM layers (triangular receptive field; see the module docstring)."""

    def make_layer(self, channels: int, colours: int, index: int) -> nn.Module:
        return RowLSTMLayer(channels, colours)

    # -- fast sampling: state-to-state once per row, one LSTM step per layer per pixel ----------
    def _fast_sample(self, x, obs, cond, draw) -> torch.Tensor:
        b, like = x.shape[0], dict(device=x.device, dtype=x.dtype)
        n, ch, w = len(self.layers), self.channels, self.width
        cache = SamplerCache(
            image=self._start_image(x),
            # each layer's input map, padded by one column each side for the 1 × 3 kernel
            inputs=[torch.zeros(b, ch, self.height, w + 2, **like) for _ in range(n)],
            h=[torch.zeros(b, w, ch, **like) for _ in range(n)],  # hidden state, current row
            c=[torch.zeros(b, w, ch, **like) for _ in range(n)],  # cell state, current row
            c_above=[],
            from_above=[],
        )
        return self.raster_sample(x, obs, draw, cache, self._pixel_output, self._row_start)

    def _row_start(self, cache: SamplerCache, i: int) -> None:
        """Row i - 1 is complete: its state-to-state contribution to row i, and its cell state."""
        cache.from_above = [layer.from_above(h) for layer, h in zip(self.layers, cache.h)]
        cache.c_above = [c.clone() for c in cache.c]

    def _pixel_output(self, cache: SamplerCache, i: int, j: int) -> torch.Tensor:
        """One LSTM step per layer at (i, j) from the caches; the (B, C * P) output there."""
        h = self.first.output_at(cache.image, i, j)
        for n, layer in enumerate(self.layers):
            canvas = cache.inputs[n]
            canvas[:, :, i, j + 1] = h
            gates = layer.input_to_state.output_at(canvas[:, :, i : i + 1], 0, j) + cache.from_above[n][:, j]
            hidden, cell = lstm_cell(gates, cache.c_above[n][:, j])
            cache.h[n][:, j] = hidden
            cache.c[n][:, j] = cell
            h = h + pointwise(layer.out, hidden)
        return self.output_at(h)
