"""Greyscale versions of colour images: the condition of a colourisation model p(colour | grey).

A declared transform, not a model detail: `greyscale(x, image_shape, num_values, levels, method)`
maps flat colour images (B, H * W * C, channel fastest, values 0..num_values-1) to flat grey images
(B, H * W, values 0..levels-1). Two brightness measures, each in [0, 1] and then quantised to
`levels` levels by rounding halves up:

- "luminance": the ITU-R BT.601 weighted sum 0.299 R + 0.587 G + 0.114 B of the scaled channels
  (what a black-and-white photograph records);
- "value": the brightest channel (the V of HSV). On the coloured digits this is the digit itself
  whatever its colour, where luminance with few levels would erase dark colours (pure blue is
  0.114) and with many would give the colour away (the 7 one-bit colours have 7 luminances).

A one-channel image is its own brightness. The chainrule.data layer re-exports this module.
"""

from __future__ import annotations

import torch

from chainrule.errors import ChainruleError

#: ITU-R BT.601 luma weights of R, G, B.
LUMA = (0.299, 0.587, 0.114)
#: The brightness measures `greyscale` knows.
GREY_METHODS = ("luminance", "value")


def check_grey(levels: int, method: str) -> None:
    """Refuse a greyscale transform that cannot be built."""
    if method not in GREY_METHODS:
        raise ChainruleError(f"unknown greyscale method {method!r}; choose one of {', '.join(GREY_METHODS)}")
    if int(levels) < 2:
        raise ChainruleError(f"a greyscale image needs at least 2 levels, got {levels}")


def greyscale(
    x: torch.Tensor, image_shape, num_values: int, levels: int, method: str = "luminance"
) -> torch.Tensor:
    """Flat colour images x (B, H * W * C) → flat grey images (B, H * W) with values 0..levels-1,
    in x's dtype: brightness (`method`) in [0, 1], times levels - 1, rounded halves up."""
    check_grey(levels, method)
    h, w, c = (*image_shape, 1)[:3] if len(image_shape) == 2 else tuple(image_shape)
    if x.dim() != 2 or x.shape[1] != h * w * c:
        raise ChainruleError(f"x must be (B, {h * w * c}) flat {h}x{w}x{c} images, got {tuple(x.shape)}")
    v = x.reshape(x.shape[0], h * w, c).double() / (num_values - 1)
    if c == 1:
        bright = v[:, :, 0]
    elif method == "value":
        bright = v.max(-1).values
    else:
        if c != 3:
            raise ChainruleError(f"luminance needs RGB images (3 channels), got {c}")
        bright = v @ torch.tensor(LUMA, dtype=torch.float64, device=x.device)
    # a tolerance so that white (weights summing to 1 in floating point) is exactly the top level
    return torch.floor(bright * (levels - 1) + 0.5 + 1e-9).clamp(0, levels - 1).to(x.dtype)
