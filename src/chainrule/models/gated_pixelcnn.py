"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot:

- the *vertical* stack convolves a (k//2 + 1) × k window that ends at the current row; it sees
  every pixel above within its width, and reaches the horizontal stack only shifted down by one
  row (so through it a pixel sees rows strictly above);
- the *horizontal* stack convolves the current row up to the current pixel (a 1 × (k//2 + 1)
  kernel, type A in the first layer, type B later, with colour masks), adds the shifted vertical
  features through a 1 × 1 convolution, and has residual connections.

Both use gated activations tanh(a) * sigmoid(b). An optional condition adds a learned bias to
every gate: `num_classes` for a class label (one-hot), `cond_dim` for any vector, or, with
`lowres_factor` f, a *spatial* bias computed from the image downsampled f times (a 3 × 3
convolution of its nearest-neighbour upsampling), which makes the model p(x | downsample(x)):
super-resolution; with `grey_levels` L, the same spatial bias from the image's greyscale version
(`chainrule.greyscale`, L levels, `grey_method`), which makes it p(x | greyscale(x)): colourisation.
Fast sampling computes the vertical stack once per row and the horizontal stack one pixel at a time
from per-layer caches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.gated_tanh import gated_tanh
from chainrule.greyscale import check_grey, greyscale
from chainrule.masked_conv import MaskedConv2d
from chainrule.memory_format import channels_last
from chainrule.models.base import register_model
from chainrule.models.image import ImageAutoregressiveModel, SamplerCache
from chainrule.models.pixelcnn import pointwise
from chainrule.validation import as_cond


def row_of(bias: torch.Tensor, i: int) -> torch.Tensor:
    """Row i (B, C, W) of a (B, C, H, W) bias map, or a (B, C, 1, 1) bias as (B, C, 1)."""
    return bias[:, :, 0] if bias.shape[2] == 1 else bias[:, :, i]


def pixel_of(bias: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """The (B, C) bias at pixel (i, j) of a map, or the global one."""
    return bias[:, :, 0, 0] if bias.shape[2] == 1 else bias[:, :, i, j]


class GatedLayer(nn.Module):
    """One vertical + horizontal gated layer with `channels` features per stack."""

    def __init__(self, in_channels: int, channels: int, kernel: int, colours: int, first: bool) -> None:
        super().__init__()
        self.first = first
        k2 = kernel // 2
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (k2 + 1, kernel))
        self.vpads = (k2, k2, k2, 0)  # left, right, top, bottom: the window ends at the current row
        mask_type = "A" if first else "B"
        self.horizontal = MaskedConv2d(
            in_channels, 2 * channels, (1, k2 + 1), mask_type, colours, centre=(0, k2), out_repeat=2
        )
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = MaskedConv2d(channels, channels, 1, "B", colours)

    def forward(
        self,
        v_padded: torch.Tensor,
        h: torch.Tensor,
        bias: torch.Tensor | None,
        next_pads: tuple[int, int, int, int] | None,
    ):
        """The next (vertical, horizontal) stacks from the vertical stack's map padded by `vpads`
        and the horizontal one's. `bias` (B, 2 * channels, 1, 1) or (B, 2 * channels, H, W) is
        added to both gates. The vertical stack comes out padded by `next_pads`, the next layer's
        `vpads` (the gate writes the padded map: no copy), or not at all after the last layer."""
        v_pre = self.vertical(v_padded)
        shifted = F.pad(v_pre[:, :, :-1], (0, 0, 1, 0))
        h_pre = self.horizontal(h) + self.v_to_h(shifted)
        if bias is not None:
            v_pre = v_pre + bias
            h_pre = h_pre + bias
        h_new = self.h_out(gated_tanh(h_pre))
        v_next = None if next_pads is None else gated_tanh(v_pre, pads=next_pads)
        return v_next, h_new if self.first else h + h_new


@register_model("gated-pixelcnn")
class GatedPixelCNN(ImageAutoregressiveModel):
    """Gated PixelCNN: `layers` gated layers of `channels` features (the first with a
    `first_kernel` window, the rest `kernel`), then ReLU, 1 × 1 (`output_channels`), ReLU, 1 × 1
    to the head. `num_classes` / `cond_dim` make it conditional (pass `cond` to log_prob/sample:
    class indices (B,) or vectors (B, cond_dim)); `lowres_factor` f makes it p(x | downsample(x, f))
    (log_prob derives the condition from x when none is given; `sample(n, cond=lowres)` upsamples);
    `grey_levels` L makes it p(x | greyscale(x)), the grey image (B, H * W) with L levels (colourisation)."""

    def __init__(
        self,
        image_shape: list[int],
        num_values: int = 2,
        channels: int = 64,
        layers: int = 8,
        kernel: int = 3,
        first_kernel: int = 7,
        output_channels: int = 128,
        head: str = "auto",
        components: int = 5,
        num_classes: int = 0,
        cond_dim: int = 0,
        lowres_factor: int = 0,
        grey_levels: int = 0,
        grey_method: str = "luminance",
    ) -> None:
        super().__init__(image_shape, num_values, head, components)
        self.remember_config(locals())
        c = self.colours
        if channels < c or output_channels < c or layers < 1:
            raise ChainruleError(f"GatedPixelCNN needs channels, output_channels >= {c} and layers >= 1")
        if kernel < 1 or kernel % 2 == 0 or first_kernel < 1 or first_kernel % 2 == 0:
            raise ChainruleError("GatedPixelCNN kernels must be odd")
        if sum(bool(v) for v in (num_classes, cond_dim, lowres_factor, grey_levels)) > 1:
            raise ChainruleError(
                "condition on one of: a class (num_classes), a vector (cond_dim), lowres_factor, grey_levels"
            )
        if grey_levels:
            check_grey(grey_levels, grey_method)
        if lowres_factor and (lowres_factor < 2 or self.height % lowres_factor or self.width % lowres_factor):
            raise ChainruleError(
                f"lowres_factor must be >= 2 and divide the image size {self.height}x{self.width}"
            )
        self.num_classes, self.cond_dim, self.lowres_factor = (
            int(num_classes),
            int(cond_dim),
            int(lowres_factor),
        )
        self.grey_levels, self.grey_method = int(grey_levels), grey_method
        spatial = bool(lowres_factor or grey_levels)
        self.conditioned_on = (
            "class" if num_classes else "vector" if cond_dim else "image" if spatial else "nothing"
        )
        self.layers = nn.ModuleList(
            GatedLayer(c if n == 0 else channels, channels, first_kernel if n == 0 else kernel, c, n == 0)
            for n in range(layers)
        )
        width = self.num_classes or self.cond_dim
        self.cond_bias = nn.Linear(width, 2 * channels * layers) if width else None
        self.cond_maps = (
            nn.Conv2d(self.condition_shape[2], 2 * channels * layers, 3, padding=1) if spatial else None
        )
        self.out1 = MaskedConv2d(channels, output_channels, 1, "B", c)
        self.out2 = MaskedConv2d(output_channels, c * self.params_per_value, 1, "B", c)

    # -- conditioning ----------------------------------------------------------------------------
    @property
    def lowres_shape(self) -> tuple[int, int, int]:
        """(h, w, C) of the low-resolution condition of a super-resolution model."""
        f = self.lowres_factor
        return self.height // f, self.width // f, self.colours

    @property
    def condition_shape(self) -> tuple[int, int, int]:
        """(h, w, C) of a spatial condition: the low-resolution image, or the (H, W, 1) grey one."""
        return (self.height, self.width, 1) if self.grey_levels else self.lowres_shape

    def condition_from(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial condition of images x (B, D): their greyscale version (B, H * W), or the
        low-resolution one: the mean of each f × f block of pixel values, rounded to a level, flat
        (B, h * w * C) channel-fastest like the images."""
        if self.grey_levels:
            return greyscale(x, self.image_shape, self.num_values, self.grey_levels, self.grey_method)
        if not self.lowres_factor:
            raise ChainruleError(f"{self.registry_name!r} is not conditioned on an image derived from x")
        f, (h, w, c) = self.lowres_factor, self.lowres_shape
        img = x.reshape(x.shape[0], self.height, self.width, c).permute(0, 3, 1, 2)
        low = F.avg_pool2d(img, f).round()
        return low.permute(0, 2, 3, 1).reshape(x.shape[0], h * w * c)

    def condition_biases(self, cond: torch.Tensor | None, batch: int) -> list[torch.Tensor | None]:
        """Per-layer gate biases, (B, 2 * channels, 1, 1) from a class or vector, (B, 2 * channels,
        H, W) from a low-resolution image; Nones for an unconditional model."""
        if self.cond_maps is not None:
            return self._spatial_biases(cond, batch)
        if self.cond_bias is None:
            if cond is not None:
                raise ChainruleError("this model is unconditional: build it with num_classes or cond_dim")
            return [None] * len(self.layers)
        if cond is None:
            raise ChainruleError("this model is conditional: pass cond (class indices or vectors)")
        cond = as_cond(cond, self.out2.weight.device)
        if self.num_classes:
            if cond.shape != (batch,) or cond.is_floating_point() and (cond != cond.round()).any():
                raise ChainruleError(f"cond must be {batch} class indices, got shape {tuple(cond.shape)}")
            if (cond < 0).any() or (cond >= self.num_classes).any():
                raise ChainruleError(f"class indices must be in [0, {self.num_classes - 1}]")
            feats = F.one_hot(cond.long(), self.num_classes).to(self.out2.weight.dtype)
        else:
            if cond.shape != (batch, self.cond_dim):
                want = f"({batch}, {self.cond_dim})"
                raise ChainruleError(f"cond must have shape {want}, got {tuple(cond.shape)}")
            feats = cond.to(self.out2.weight.dtype)
        return [b[:, :, None, None] for b in self.cond_bias(feats).chunk(len(self.layers), dim=1)]

    def _spatial_biases(self, cond: torch.Tensor | None, batch: int) -> list[torch.Tensor]:
        what = "greyscale" if self.grey_levels else "low-resolution"
        if cond is None:
            raise ChainruleError(f"this model is conditioned on an image: pass cond, the {what} images")
        h, w, c = self.condition_shape
        cond = as_cond(cond, self.out2.weight.device)
        if cond.shape[0] != batch or cond[0].numel() != h * w * c:
            raise ChainruleError(
                f"cond must hold {batch} {what} images of {h}x{w}"
                + (f"x{c}" if c > 1 else "")
                + f" values, got shape {tuple(cond.shape)}"
            )
        image = cond.reshape(batch, h, w, c).permute(0, 3, 1, 2).to(self.out2.weight.dtype)
        if self.grey_levels:
            top = self.grey_levels - 1
            bad = ~torch.isfinite(cond) | (cond != cond.round()) | (cond < 0) | (cond > top)
            if bad.any():
                raise ChainruleError(f"cond (greyscale images) must hold integer levels 0..{top}")
            return list(self.cond_maps(image * (2.0 / top) - 1.0).chunk(len(self.layers), dim=1))
        self.head.validate(cond, "cond (low-resolution images)")
        up = F.interpolate(self.scale_value(image), scale_factor=self.lowres_factor, mode="nearest")
        return list(self.cond_maps(up).chunk(len(self.layers), dim=1))

    def check_cond(self, cond: torch.Tensor | None) -> None:
        """Conditions are checked where they are used (`condition_biases`)."""

    def head_inputs(
        self, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As for every autoregressive model; a super-resolution or colourisation model derives its
        condition from x when none is given."""
        x = self.prepare(x)
        if self.cond_maps is not None and cond is None:
            cond = self.condition_from(x)
        return self.conditioner(x, cond), x

    @classmethod
    def tiny_config(cls) -> dict:
        return {"image_shape": [3, 3], "channels": 4, "layers": 2, "first_kernel": 3, "output_channels": 4}

    # -- the network -----------------------------------------------------------------------------
    def network(self, image: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        biases = self.condition_biases(cond, image.shape[0])
        v, h = F.pad(image, self.layers[0].vpads), image
        pads = [layer.vpads for layer in self.layers[1:]] + [None]
        for layer, bias, next_pads in zip(self.layers, biases, pads):
            v, h = layer(None if v is None else channels_last(v), channels_last(h), bias, next_pads)
        return self.out2(F.relu(self.out1(F.relu(h))))

    # -- fast sampling: vertical stack once per row, horizontal stack per pixel -----------------------
    def _fast_sample(self, x, obs, cond, draw) -> torch.Tensor:
        b, like = x.shape[0], dict(device=x.device, dtype=x.dtype)
        k2s = [layer.horizontal.pads[0] for layer in self.layers]
        cache = SamplerCache(
            biases=self.condition_biases(cond, b),
            # horizontal-stack inputs of every layer, left-padded for its 1 × (k//2 + 1) kernel
            h_in=[
                torch.zeros(b, layer.horizontal.in_channels, self.height, self.width + k2, **like)
                for layer, k2 in zip(self.layers, k2s)
            ],
            # vertical-stack inputs of every layer, padded like `vpads`; layer 0's is the image
            v_in=[
                torch.zeros(
                    b, lay.vertical.in_channels, self.height + lay.vpads[2], self.width + 2 * k2, **like
                )
                for lay, k2 in zip(self.layers, k2s)
            ],
            v_to_h=[],
        )
        image = self.to_image(x)
        k0 = k2s[0]
        cache.h_in[0][:, :, :, k0:] = image
        cache.v_in[0][:, :, k0:, k0 : k0 + self.width] = image
        return self.raster_sample(x, obs, draw, cache, self._pixel_output, self._row_start)

    def write(self, cache: SamplerCache, i: int, j: int, c: int, value: torch.Tensor) -> None:
        v = self.scale_value(value)
        k0 = self.layers[0].horizontal.pads[0]
        cache.h_in[0][:, c, i, j + k0] = v
        cache.v_in[0][:, c, i + k0, j + k0] = v

    def _row_start(self, cache: SamplerCache, i: int) -> None:
        """Finish the vertical stack on row i - 1 (now complete) and turn it into each layer's
        vertical-to-horizontal input for row i."""
        cache.v_to_h = []
        for n, layer in enumerate(self.layers):
            v_in = cache.v_in[n]
            if i == 0:
                pre = v_in.new_zeros(v_in.shape[0], layer.v_to_h.in_channels, self.width)
            else:
                top = layer.vpads[2]
                window = v_in[:, :, i - 1 : i + top]  # input rows i-1-k2 .. i-1 (padded)
                pre = F.conv2d(window, layer.vertical.weight, layer.vertical.bias)[:, :, 0]
                bias = cache.biases[n]
                v_pre = pre if bias is None else pre + row_of(bias, i - 1)
                if n + 1 < len(self.layers):
                    nxt = self.layers[n + 1]
                    k2n = nxt.horizontal.pads[0]
                    cache.v_in[n + 1][:, :, i - 1 + nxt.vpads[2], k2n : k2n + self.width] = gated_tanh(v_pre)
            cache.v_to_h.append(
                F.conv1d(pre, layer.v_to_h.weight[:, :, 0], layer.v_to_h.bias)
                if i > 0
                else layer.v_to_h.bias[None, :, None].expand(pre.shape[0], -1, self.width)
            )

    def _pixel_output(self, cache: SamplerCache, i: int, j: int) -> torch.Tensor:
        """The horizontal stack and output layers at (i, j) from the caches."""
        h = None
        for n, layer in enumerate(self.layers):
            h_pre = layer.horizontal.output_at(cache.h_in[n][:, :, i : i + 1], 0, j)
            h_pre = h_pre + cache.v_to_h[n][:, :, j]
            if cache.biases[n] is not None:
                h_pre = h_pre + pixel_of(cache.biases[n], i, j)
            h_new = pointwise(layer.h_out, gated_tanh(h_pre))
            h = h_new if layer.first else h + h_new
            if n + 1 < len(self.layers):
                k2n = self.layers[n + 1].horizontal.pads[0]
                cache.h_in[n + 1][:, :, i, j + k2n] = h
        return pointwise(self.out2, F.relu(pointwise(self.out1, F.relu(h))))
