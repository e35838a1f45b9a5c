"""Super-resolution: draw high-resolution images given low-resolution ones.

A super-resolution model is p(x | downsample(x, f)): a `GatedPixelCNN(lowres_factor=f)`, whose
`condition_from(x)` is the low-resolution condition (the mean of each f × f block of pixel values,
rounded to a level) and whose `sample(n, cond=lowres)` draws x given it. Everything here goes
through those two methods and `log_prob(x, cond=...)`:

- `super_resolve` draws `samples` high-resolution images per input, given its low-resolution version;
- `superres_log_prob` is the exact log p(x | downsample(x)) of each image, in nats;
- `upsample` enlarges low-resolution images f times by repeating pixels (the blocky picture of what
  the model was given).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.tasks.complete import conditional_nll_stats


def lowres_factor(model: Model) -> int:
    """The model's downsampling factor f, or a clear error when it is not a super-resolution model."""
    if model.conditioned_on != "image" or not model.config().get("lowres_factor"):
        raise ChainruleError(
            f"super-resolution needs a model of p(x | low-resolution x): {model.registry_name!r} has no"
            " lowres_factor; train one with lowres_factor (e.g. recipes/gated-pixelcnn-mnist-superres.yaml)"
        )
    return int(model.lowres_factor)


def _images(model: Model, x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != model.event_shape[0]:
        raise ChainruleError(
            f"x must be (N, {model.event_shape[0]}) flat images like the model's, got {tuple(x.shape)}"
        )
    return x


def super_resolve(
    model: Model, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`samples` high-resolution draws from p(x | downsample(x)) for every image of x (N, D), given
    only its low-resolution version `model.condition_from(x)`: (N, samples, D)."""
    lowres_factor(model)
    if samples < 1:
        raise ChainruleError(f"samples must be at least 1, got {samples}")
    x = _images(model, x)
    low = model.condition_from(x).repeat_interleave(samples, 0)
    with torch.no_grad():
        out = model.sample(low.shape[0], cond=low, generator=generator)
    return out.reshape(x.shape[0], samples, -1)


def superres_log_prob(model: Model, x: torch.Tensor) -> torch.Tensor:
    """Exact log p(x | downsample(x)) of every image of x (N, D), in nats: (N,)."""
    lowres_factor(model)
    x = _images(model, x)
    with torch.no_grad():
        return model.log_prob(x, cond=model.condition_from(x))


def upsample(model: Model, low: torch.Tensor) -> torch.Tensor:
    """Low-resolution images (N, h * w * C) → (N, D) at the model's size, each pixel repeated in an
    f × f block (nearest neighbour: the blocky input the model is conditioned on)."""
    f = lowres_factor(model)
    h, w, c = model.lowres_shape
    low = torch.as_tensor(low)
    if low.dim() != 2 or low.shape[1] != h * w * c:
        raise ChainruleError(
            f"low must be (N, {h * w * c}) flat low-resolution images ({h}x{w}x{c}, as"
            f" model.condition_from gives), got {tuple(low.shape)}"
        )
    img = low.reshape(low.shape[0], h, w, c).repeat_interleave(f, 1).repeat_interleave(f, 2)
    return img.reshape(low.shape[0], -1)


def superres_report(
    model: Model, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Super-resolve every image of x (N, D) and measure it: the draws (N, samples, D), the
    low-resolution inputs enlarged to full size (N, D), and a dict with the factor, the
    low-resolution shape, the seconds taken and the exact NLL of p(x | low-res x) (nats, its
    standard error, bits/dim)."""
    factor = lowres_factor(model)
    model.eval()
    t = time.time()
    draws = super_resolve(model, x, samples, generator)
    secs = time.time() - t
    nll = -superres_log_prob(model, x).double()
    stats = {
        "superres_factor": factor,
        "lowres_shape": list(model.lowres_shape),
        "seconds": round(secs, 2),
        **conditional_nll_stats(nll, x.shape[1]),
    }
    return draws, upsample(model, model.condition_from(_images(model, x))), stats
