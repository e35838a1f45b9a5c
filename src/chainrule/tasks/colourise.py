"""Colourisation: draw colour images given greyscale ones (the notes' inverse problem).

A colourisation model is p(x | greyscale(x)): a `GatedPixelCNN(grey_levels=L)` whose
`condition_from(x)` is the declared transform `chainrule.greyscale.greyscale` (L levels, the
model's `grey_method`) and whose `sample(n, cond=grey)` draws colour images given grey ones.
Everything here goes through those two methods and `log_prob(x, cond=...)`:

- `colourise` draws `samples` colour images for each greyscale image (B, H * W);
- `colourise_log_prob` is the exact log p(x | greyscale(x)) of each colour image, in nats;
- `colourise_report` does both for colour images, with the timing and the bits/dim.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.tasks.complete import conditional_nll_stats


def grey_levels(model: Model) -> int:
    """The number of grey levels of the model's condition, or a clear error when it is not a
    colourisation model."""
    levels = int(model.config().get("grey_levels") or 0)
    if model.conditioned_on != "image" or not levels:
        raise ChainruleError(
            f"colourisation needs a model of p(colour | greyscale): {model.registry_name!r} has no"
            " grey_levels; train one (e.g. recipes/gated-pixelcnn-colour-mnist-colourise.yaml)"
        )
    return levels


def _check(model: Model, x: torch.Tensor, width: int, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != width:
        raise ChainruleError(f"{what} must be (N, {width}) flat images, got {tuple(x.shape)}")
    return x


def colourise(
    model: Model, grey: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`samples` colour draws from p(x | grey) for every greyscale image of `grey` (N, H * W) with
    values 0..grey_levels-1 (as `model.condition_from` gives): (N, samples, D)."""
    grey_levels(model)
    if samples < 1:
        raise ChainruleError(f"samples must be at least 1, got {samples}")
    h, w = model.image_shape[:2]
    grey = _check(model, grey, h * w, "grey").repeat_interleave(samples, 0)
    with torch.no_grad():
        out = model.sample(grey.shape[0], cond=grey, generator=generator)
    return out.reshape(-1, samples, out.shape[-1])


def colourise_log_prob(model: Model, x: torch.Tensor) -> torch.Tensor:
    """Exact log p(x | greyscale(x)) of every colour image of x (N, D), in nats: (N,)."""
    grey_levels(model)
    x = _check(model, x, model.event_shape[0], "x")
    with torch.no_grad():
        return model.log_prob(x, cond=model.condition_from(x))


def colourise_report(
    model: Model, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Colourise the greyscale version of every colour image of x (N, D) and measure it: the draws
    (N, samples, D), the greyscale inputs (N, H * W), and a dict with the levels, the seconds taken
    and the exact NLL of p(x | greyscale(x)) (nats, its standard error, bits/dim)."""
    levels = grey_levels(model)
    model.eval()
    x = _check(model, x, model.event_shape[0], "x")
    grey = model.condition_from(x)
    t = time.time()
    draws = colourise(model, grey, samples, generator)
    secs = time.time() - t
    nll = -colourise_log_prob(model, x).double()
    stats = {
        "grey_levels": levels,
        "grey_method": model.config().get("grey_method"),
        "seconds": round(secs, 2),
        **conditional_nll_stats(nll, x.shape[1]),
    }
    return draws, grey, stats
