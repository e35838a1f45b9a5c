"""Masked 2-D convolutions for raster-order image models (PixelCNN, Gated PixelCNN, PixelRNN).

Pixels are generated row by row, left to right, and inside a pixel colour by colour (R, G, B).
A masked convolution's output at (i, j) may see input pixels above row i, pixels left of j in
row i, and at (i, j) itself only the colours allowed by its type:

- type "A" (first layer): output colour group g sees input colour groups < g at the centre,
- type "B" (later layers): output colour group g sees input groups <= g at the centre.

Channels are split into colour groups in contiguous blocks (channel c of n belongs to group
c * C // n); with one colour (grey images) type A excludes the centre and type B includes it.
The mask is a buffer applied functionally (`F.conv2d(x, W * M)`); weights are never edited.
`output_at` computes one output position from a cached input map, for the fast samplers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError


def colour_groups(channels: int, colours: int, repeat: int = 1) -> torch.Tensor:
    """Colour group of each of `channels` channels: contiguous blocks, (channels,) long. With
    `repeat` r the channels are r consecutive copies of that layout (the two halves of a gated
    layer's pre-activation, for example)."""
    if channels % repeat:
        raise ChainruleError(f"{channels} channels do not split into {repeat} equal parts")
    part = channels // repeat
    return (torch.arange(part) * colours // part).repeat(repeat)


def centre_mask(
    out_channels: int, in_channels: int, colours: int, mask_type: str, out_repeat: int = 1
) -> torch.Tensor:
    """(out, in) 0/1 matrix: which input channels an output channel sees at its own pixel."""
    out_g = colour_groups(out_channels, colours, out_repeat)[:, None]
    in_g = colour_groups(in_channels, colours)[None, :]
    return (in_g < out_g if mask_type == "A" else in_g <= out_g).float()


def raster_mask(
    out_channels: int,
    in_channels: int,
    kernel: tuple[int, int],
    colours: int,
    mask_type: str,
    centre: tuple[int, int],
    out_repeat: int = 1,
) -> torch.Tensor:
    """(out, in, kh, kw) mask for a kernel whose centre tap is at `centre` = (row, col): taps in
    rows above the centre and left of it in the centre row are on; the centre tap follows the
    colour rule of `mask_type`; everything after the centre in raster order is off."""
    kh, kw = kernel
    ci, cj = centre
    m = torch.zeros(out_channels, in_channels, kh, kw)
    m[:, :, :ci, :] = 1
    m[:, :, ci, :cj] = 1
    m[:, :, ci, cj] = centre_mask(out_channels, in_channels, colours, mask_type, out_repeat)
    return m


class MaskedConv2d(nn.Conv2d):
    """k_h × k_w convolution with a raster/colour mask; zero padding keeps the image size.

    With `centre=None` the centre tap is the kernel's middle (square PixelCNN kernels, padding
    k//2 on every side). Gated PixelCNN's horizontal stack uses a (1, k//2+1) kernel whose last
    column is the centre (left padding only)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str = "B",
        colours: int = 1,
        centre: tuple[int, int] | None = None,
        bias: bool = True,
        out_repeat: int = 1,
    ) -> None:
        if mask_type not in ("A", "B"):
            raise ChainruleError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        super().__init__(in_channels, out_channels, (kh, kw), bias=bias)
        centre = (kh // 2, kw // 2) if centre is None else tuple(centre)
        # padding (left, right, top, bottom) that puts the centre tap on the output pixel
        self.pads = (centre[1], kw - 1 - centre[1], centre[0], kh - 1 - centre[0])
        self.centre = centre
        self.mask_type = mask_type
        mask = raster_mask(out_channels, in_channels, (kh, kw), colours, mask_type, centre, out_repeat)
        self.register_buffer("mask", mask, persistent=False)
        # kernel rows below the centre are all zero in the mask: the forward pass leaves them out
        used = torch.nonzero(mask.flatten(0, 1).any(0).any(1))
        self.rows = int(used.max()) + 1 if used.numel() else 1
        left, right, top, _ = self.pads
        self.cropped_pads = (left, right, top, self.rows - 1 - top)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with the kernel's first `rows` rows only (the rest is masked out), so a
        3 x 3 type-B kernel costs 2 x 3 taps and the 7 x 7 type-A first layer 4 x 7: the same
        output, a third and three sevenths fewer multiply-adds."""
        rows = self.rows
        weight = self.weight[:, :, :rows] * self.mask[:, :, :rows]
        return F.conv2d(F.pad(x, self.cropped_pads), weight, self.bias)

    def output_at(self, padded: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """Output (B, out) at pixel (i, j) from the input already padded by `self.pads`
        (B, in, H + pad_h, W + pad_w): one patch times the masked weight."""
        kh, kw = self.kernel_size
        patch = padded[:, :, i : i + kh, j : j + kw]
        return F.linear(patch.flatten(1), self.masked_weight().flatten(1), self.bias)
