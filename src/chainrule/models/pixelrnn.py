"""PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): the parts Row LSTM and
Diagonal BiLSTM share.

Both are a `first_kernel` × `first_kernel` type-A masked convolution (7 × 7 in the paper), then
`layers` residual LSTM layers of `channels` hidden units (layer output = input + 1 × 1 type-B
convolution of the hidden state), then ReLU, 1 × 1 type B (`output_channels`), ReLU, 1 × 1 type B
to the head's parameters, as PixelCNN's output. The subclasses differ in the recurrent layer
(`row_lstm.py`, `diagonal_bilstm.py`).

Colour images are exact as in the paper: the input-to-state convolutions are masked (type B,
hidden units split into R, G, B groups like the feature maps), and the state-to-state part only
sees hidden states of pixels that come strictly earlier (the row above, or the previous pixel),
whose every colour is already known.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.masked_conv import MaskedConv2d
from chainrule.models.image import ImageAutoregressiveModel, SamplerCache
from chainrule.models.pixelcnn import pointwise


def lstm_cell(gates: torch.Tensor, c: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM update from pre-activations [o, f, i, g] stacked along `dim`: c' = σ(f) c + σ(i)
    tanh(g), h' = σ(o) tanh(c'). Half-precision gates (bf16 autocast) are lifted to float32 so the
    cell state does not lose precision along a long recurrence."""
    if gates.dtype in (torch.float16, torch.bfloat16):
        gates = gates.float()
    sig, g = gates.split([3 * gates.shape[dim] // 4, gates.shape[dim] // 4], dim)
    o, f, i = sig.sigmoid().chunk(3, dim)  # one sigmoid (and one backward) for the three gates
    c = torch.addcmul(f * c, i, g.tanh())
    return o * c.tanh(), c


def positive_int(value, name: str, minimum: int = 1) -> int:
    """`value` as an int >= minimum, or a ChainruleError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ChainruleError(f"PixelRNN option {name} must be an integer >= {minimum}, got {value!r}")
    return value


class PixelRNN(ImageAutoregressiveModel):
    """Masked 7 × 7 input layer, `layers` residual recurrent layers of `channels` hidden units
    (built by `make_layer`), ReLU + two 1 × 1 type-B output layers; heads: Bernoulli, 256-way
    softmax or discretized logistic mixture (`head`, `components`)."""

    def __init__(
        self,
        image_shape: list[int],
        num_values: int = 2,
        channels: int = 32,
        layers: int = 2,
        output_channels: int = 64,
        first_kernel: int = 7,
        head: str = "auto",
        components: int = 5,
    ) -> None:
        super().__init__(image_shape, num_values, head, components)
        self.remember_config(locals())
        c = self.colours
        channels = positive_int(channels, "channels", c)
        output_channels = positive_int(output_channels, "output_channels", c)
        positive_int(layers, "layers")
        if positive_int(first_kernel, "first_kernel") % 2 == 0:
            raise ChainruleError(f"PixelRNN option first_kernel must be odd, got {first_kernel}")
        self.channels = channels
        self.first = MaskedConv2d(c, channels, first_kernel, "A", c)
        self.layers = nn.ModuleList(self.make_layer(channels, c, n) for n in range(layers))
        self.out1 = MaskedConv2d(channels, output_channels, 1, "B", c)
        self.out2 = MaskedConv2d(output_channels, c * self.params_per_value, 1, "B", c)

    def make_layer(self, channels: int, colours: int, index: int) -> nn.Module:
        """Recurrent layer number `index` of the stack: (B, channels, H, W) → same shape."""
        raise NotImplementedError

    def network(self, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(image)
        for layer in self.layers:
            h = layer(h)
        return self.out2(F.relu(self.out1(F.relu(h))))

    @classmethod
    def tiny_config(cls) -> dict:
        return {"image_shape": [3, 3], "channels": 3, "layers": 1, "output_channels": 4, "first_kernel": 3}

    # -- fast sampling scaffolding ---------------------------------------------------------------
    def _start_image(self, x: torch.Tensor) -> torch.Tensor:
        """The first convolution's padded input canvas, holding the observed values of `x`."""
        left, right, top, bottom = self.first.pads
        size = (x.shape[0], self.colours, self.height + top + bottom, self.width + left + right)
        image = torch.zeros(size, device=x.device, dtype=x.dtype)
        image[:, :, top : top + self.height, left : left + self.width] = self.to_image(x)
        return image

    def write(self, cache: SamplerCache, i: int, j: int, c: int, value: torch.Tensor) -> None:
        left, _, top, _ = self.first.pads
        cache.image[:, c, i + top, j + left] = self.scale_value(value)

    def output_at(self, h: torch.Tensor) -> torch.Tensor:
        """The output layers on one pixel's features (B, channels) → (B, C * P)."""
        return pointwise(self.out2, F.relu(pointwise(self.out1, F.relu(h))))
