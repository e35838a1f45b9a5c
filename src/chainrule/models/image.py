"""Base of the raster-order image models (PixelCNN, Gated PixelCNN, PixelRNN).

Images travel through the contract flat, (B, D) with D = H * W * C and the channel fastest, so
the flat index order is the generation order: rows top to bottom, pixels left to right, colours
R, G, B inside a pixel. Subclasses provide `network(image, cond=None) -> (B, C * P, H, W)`, where
image is (B, C, H, W) scaled to [-1, 1] and output channel c * P + p is parameter p of colour c;
this class turns that into the head's (B, D, P) parameters. Fast samplers keep their per-layer
caches in a `SamplerCache` made for each call and passed along, never on the model.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import torch

from chainrule.distributions import Bernoulli, Categorical, DiscretizedLogisticMixture, Head
from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import AutoregressiveModel, Draw


class SamplerCache(SimpleNamespace):
    """A fast sampler's working state for one call (canvases, recurrent states, biases)."""


#: Names of the per-sub-pixel heads an image model can use.
IMAGE_HEADS = ("auto", "bernoulli", "categorical", "logistic")


def image_head(head: str, num_values: int, components: int) -> Head:
    """The head named `head` ("auto": Bernoulli for 2 values, else a num_values-way softmax)."""
    if head not in IMAGE_HEADS:
        raise ChainruleError(f"unknown image head {head!r}; choose one of {', '.join(IMAGE_HEADS)}")
    if num_values < 2:
        raise ChainruleError(f"image models need num_values >= 2 (discrete pixels), got {num_values}")
    if head == "logistic":
        return DiscretizedLogisticMixture(components, num_values)
    if head == "bernoulli" or (head == "auto" and num_values == 2):
        if num_values != 2:
            raise ChainruleError("the bernoulli head models binary pixels: num_values must be 2")
        return Bernoulli()
    return Categorical(num_values)


def check_image_shape(image_shape) -> tuple[int, int, int]:
    """(H, W) or (H, W, C) → (H, W, C), refusing anything else."""
    if image_shape is None:
        raise ChainruleError("image models need image_shape: [H, W] or [H, W, C]")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ChainruleError(f"image_shape must be [H, W] or [H, W, C] of positive sizes, got {list(shape)}")
    return shape if len(shape) == 3 else (*shape, 1)


class ImageAutoregressiveModel(AutoregressiveModel):
    """Raster-order model of H × W × C images with discrete sub-pixels."""

    def __init__(
        self,
        image_shape: list[int],
        num_values: int = 2,
        head: str = "auto",
        components: int = 5,
    ) -> None:
        h, w, c = check_image_shape(image_shape)
        super().__init__(h * w * c, head=image_head(head, int(num_values), int(components)))
        self.image_shape = tuple(int(s) for s in image_shape)
        self.height, self.width, self.colours = h, w, c
        self.params_per_value = self.head.params_per_dim

    # -- layout ------------------------------------------------------------------------------
    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Flat (B, D) values → (B, C, H, W) network input in [-1, 1]."""
        img = x.view(x.shape[0], self.height, self.width, self.colours).permute(0, 3, 1, 2)
        return img * (2.0 / (self.num_values - 1)) - 1.0

    def to_params(self, out: torch.Tensor) -> torch.Tensor:
        """Network output (B, C * P, H, W) → head parameters (B, D) or (B, D, P)."""
        b, p = out.shape[0], self.params_per_value
        params = out.view(b, self.colours, p, self.height, self.width).permute(0, 3, 4, 1, 2)
        params = params.reshape(b, self.dim, p)
        return params.squeeze(-1) if p == 1 else params

    def network(self, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.network(self.to_image(x), cond)
        if out.dtype in (torch.bfloat16, torch.float16):  # heads need fp32: bin masses are differences
            out = out.float()
        return self.to_params(out)

    def pixel_params(self, out: torch.Tensor) -> torch.Tensor:
        """One pixel's network output (B, C * P) → its C sub-pixels' head parameters."""
        p = self.params_per_value
        params = out.view(out.shape[0], self.colours, p)
        return params.squeeze(-1) if p == 1 else params

    def scale_value(self, v: torch.Tensor) -> torch.Tensor:
        """A drawn sub-pixel value → its network input in [-1, 1] (as `to_image`)."""
        return v * (2.0 / (self.num_values - 1)) - 1.0

    def raster_sample(
        self,
        x: torch.Tensor,
        obs: torch.Tensor | None,
        draw: Draw,
        cache: SamplerCache,
        pixel_output: Callable[[SamplerCache, int, int], torch.Tensor],
        on_row_start: Callable[[SamplerCache, int], None] | None = None,
    ) -> torch.Tensor:
        """Fast sampling loop shared by the image models: for each pixel in raster order and each
        of its colours, `pixel_output(cache, i, j)` gives the (B, C * P) output at that pixel from
        the caches (the model updates them in `write`), `draw` chooses colour c, and the value is
        kept (or the observed one) and handed to `self.write(cache, i, j, c, value)`. Draws come
        in exactly the generic sampler's order, so the two return the same images."""
        for i in range(self.height):
            if on_row_start is not None:
                on_row_start(cache, i)
            for j in range(self.width):
                for c in range(self.colours):
                    d = (i * self.width + j) * self.colours + c
                    params = self.pixel_params(pixel_output(cache, i, j))[:, c]
                    self._place(x, d, draw(params, d), obs)
                    self.write(cache, i, j, c, x[:, d])
        return x

    def write(self, cache: SamplerCache, i: int, j: int, c: int, value: torch.Tensor) -> None:
        """Record a drawn value in the sampler's input cache (fast samplers override)."""
        raise NotImplementedError
