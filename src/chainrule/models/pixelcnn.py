"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.5).

A 7 × 7 type-A masked convolution, residual blocks (1 × 1 → 3 × 3 type B → 1 × 1, each after a
ReLU), then two ReLU + 1 × 1 type-B layers to the head's parameters. Stacked square masked
kernels leave a *blind spot*: pixels above and to the right of the current one that no layer
reaches (tests/test_image_models.py documents it). Gated PixelCNN removes it.

Fast sampling keeps every layer's activation map: once the pixels before (i, j) are drawn, the
outputs of every layer at (i, j) are final, so each new sub-pixel costs one patch per layer
instead of a full network pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.masked_conv import MaskedConv2d
from chainrule.memory_format import channels_last
from chainrule.models.base import register_model
from chainrule.models.image import ImageAutoregressiveModel, SamplerCache


class ResidualBlock(nn.Module):
    """x + 1×1(ReLU(3×3_B(ReLU(1×1(ReLU(x)))))) with h → h/2 → h/2 → h channels."""

    def __init__(self, channels: int, colours: int) -> None:
        super().__init__()
        half = max(channels // 2, colours)
        self.reduce = MaskedConv2d(channels, half, 1, "B", colours)
        self.conv = MaskedConv2d(half, half, 3, "B", colours)
        self.expand = MaskedConv2d(half, channels, 1, "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(F.relu(self.conv(F.relu(self.reduce(F.relu(x))))))
        return x + y


@register_model("pixelcnn")
class PixelCNN(ImageAutoregressiveModel):
    """PixelCNN with `channels` feature maps, `blocks` residual blocks and `output_channels`
    in the 1 × 1 output layers; heads: Bernoulli, 256-way softmax or discretized logistics."""

    def __init__(
        self,
        image_shape: list[int],
        num_values: int = 2,
        channels: int = 64,
        blocks: int = 6,
        output_channels: int = 128,
        first_kernel: int = 7,
        head: str = "auto",
        components: int = 5,
    ) -> None:
        super().__init__(image_shape, num_values, head, components)
        self.remember_config(locals())
        c = self.colours
        if channels < c or output_channels < c or blocks < 0 or first_kernel < 1 or first_kernel % 2 == 0:
            raise ChainruleError(
                f"PixelCNN needs channels and output_channels >= {c} (one per colour), blocks >= 0"
                " and an odd first_kernel"
            )
        self.first = MaskedConv2d(c, channels, first_kernel, "A", c)
        self.blocks = nn.ModuleList(ResidualBlock(channels, c) for _ in range(blocks))
        self.out1 = MaskedConv2d(channels, output_channels, 1, "B", c)
        self.out2 = MaskedConv2d(output_channels, c * self.params_per_value, 1, "B", c)

    def network(self, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = channels_last(self.first(image))
        for block in self.blocks:
            h = block(h)
        return self.out2(F.relu(self.out1(F.relu(h))))

    @classmethod
    def tiny_config(cls) -> dict:
        return {"image_shape": [3, 3], "channels": 4, "blocks": 1, "output_channels": 4, "first_kernel": 3}

    # -- fast sampling: per-layer activation caches ----------------------------------------------
    def _fast_sample(self, x, obs, cond, draw) -> torch.Tensor:
        b = x.shape[0]
        like = dict(device=x.device, dtype=x.dtype)

        def canvas(conv: MaskedConv2d) -> torch.Tensor:
            left, right, top, bottom = conv.pads
            size = (b, conv.in_channels, self.height + top + bottom, self.width + left + right)
            return torch.zeros(size, **like)

        # input of the first conv, and for every block the (padded) input of its 3 × 3 conv
        cache = SamplerCache(image=canvas(self.first), mid=[canvas(block.conv) for block in self.blocks])
        left, _, top, _ = self.first.pads
        cache.image[:, :, top : top + self.height, left : left + self.width] = self.to_image(x)
        return self.raster_sample(x, obs, draw, cache, self._pixel_output)

    def write(self, cache: SamplerCache, i: int, j: int, c: int, value: torch.Tensor) -> None:
        left, _, top, _ = self.first.pads
        cache.image[:, c, i + top, j + left] = self.scale_value(value)

    def _pixel_output(self, cache: SamplerCache, i: int, j: int) -> torch.Tensor:
        """Every layer's output at (i, j) from the caches (earlier pixels are final)."""
        h = self.first.output_at(cache.image, i, j)
        for block, mid in zip(self.blocks, cache.mid):
            left, _, top, _ = block.conv.pads
            mid[:, :, i + top, j + left] = F.relu(pointwise(block.reduce, F.relu(h)))
            y = pointwise(block.expand, F.relu(block.conv.output_at(mid, i, j)))
            h = h + y
        return pointwise(self.out2, F.relu(pointwise(self.out1, F.relu(h))))


def pointwise(conv: MaskedConv2d, h: torch.Tensor) -> torch.Tensor:
    """A 1 × 1 masked convolution applied to one pixel's features (B, in) → (B, out)."""
    return F.linear(h, conv.masked_weight().flatten(1), conv.bias)
