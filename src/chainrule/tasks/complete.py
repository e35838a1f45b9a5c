"""Completion (inpainting): fill in the missing pixels of images from a model's conditionals.

Masks say which pixels are *observed* (True) and which are to be filled in. `mask_from_spec`
reads the CLI forms: `bottom-half` (the bottom half is missing), `top-half`, `left-half`,
`right-half`, `random:P` (each pixel missing with probability P) and `PATH.png` (white pixels
missing). For colour images a pixel's mask covers its three channels.

Every model completes through the one contract, `sample(n, given=..., mask=...)`. The fill-in
is an exact draw from p(missing | observed) when the observed dimensions come first in the
model's order (a raster model with the bottom missing; an order-agnostic model in a matching
order); `conditional_log_prob` gives log p(missing | observed) in that case.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from chainrule.devices import draw, model_device
from chainrule.errors import ChainruleError
from chainrule.models.base import Model

MASK_FORMS = "bottom-half, top-half, left-half, right-half, random:P (0 <= P <= 1) or PATH.png"


def pixel_mask(spec: str, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(H, W) bool, True = observed, from a mask spec (see the module docstring)."""
    observed = torch.ones(height, width, dtype=torch.bool)
    if spec == "bottom-half":
        observed[height // 2 :] = False
    elif spec == "top-half":
        observed[: height // 2] = False
    elif spec == "left-half":
        observed[:, : width // 2] = False
    elif spec == "right-half":
        observed[:, width // 2 :] = False
    elif spec.startswith("random:"):
        try:
            p = float(spec.split(":", 1)[1])
        except ValueError:
            raise ChainruleError(f"mask {spec!r}: random:P needs a number P in [0, 1]") from None
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ChainruleError(f"mask {spec!r}: the missing fraction P must be in [0, 1]")
        u = draw(torch.rand, height, width, generator=generator, device="cpu")
        observed = u >= p  # masks are held on the CPU; the model moves them
    elif spec.lower().endswith(".png"):
        observed = ~png_mask(spec, height, width)
    else:
        raise ChainruleError(f"unknown mask {spec!r}; use {MASK_FORMS}")
    return observed


def png_mask(path: str, height: int, width: int) -> torch.Tensor:
    """(H, W) bool, True where the PNG is white (brighter than mid-grey): the missing pixels."""
    import matplotlib.image as mpimg

    if not Path(path).is_file():
        raise ChainruleError(f"mask file {path!r} does not exist")
    try:
        img = np.asarray(mpimg.imread(path), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as e:
        raise ChainruleError(f"mask file {path!r} is not a readable PNG ({e})") from None
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    if img.shape != (height, width):
        raise ChainruleError(
            f"mask {path!r} is {img.shape[0]}x{img.shape[1]}; the images are {height}x{width}"
        )
    return torch.from_numpy(img > 0.5)


def expand_to_dims(observed: torch.Tensor, colours: int) -> torch.Tensor:
    """(H, W) pixel mask → (H * W * C,) mask over sub-pixels (channel fastest)."""
    return observed.reshape(-1, 1).expand(-1, colours).reshape(-1)


def mask_for_model(spec: str, model: Model, generator: torch.Generator | None = None) -> torch.Tensor:
    """The (D,) observed-mask of a spec for a model of images (`image_shape` (H, W) or (H, W, C))."""
    shape = model.image_shape
    if not shape:
        raise ChainruleError("completion masks need a model of images (with image_shape)")
    h, w = int(shape[0]), int(shape[1])
    colours = int(shape[2]) if len(shape) == 3 else 1
    return expand_to_dims(pixel_mask(spec, h, w, generator), colours)


def complete(
    model: Model,
    x: torch.Tensor,
    observed: torch.Tensor,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`samples` completions of every row of x (B, D) keeping the observed entries: (B, samples, D)."""
    if samples < 1:
        raise ChainruleError(f"samples must be at least 1, got {samples}")
    if observed.shape != (x.shape[1],):
        raise ChainruleError(
            f"mask has shape {tuple(observed.shape)}; expected ({x.shape[1]},) like each image"
        )
    given = x.repeat_interleave(samples, 0)
    out = model.sample(given.shape[0], given=given, mask=observed, generator=generator)
    return out.reshape(x.shape[0], samples, -1)


def observed_first(model: Model, observed: torch.Tensor) -> bool:
    """Whether every observed dimension precedes every missing one in the model's single chain-rule
    order (False for models without one: non-autoregressive models, ensembles of orders)."""
    order = model.sampling_order()
    if order is None:
        return False
    order = torch.as_tensor(order)
    flags = observed[order]
    missing = (~flags).nonzero()
    return missing.numel() == 0 or bool(flags[int(missing[0]) :].logical_not().all())


def conditional_log_prob(model: Model, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """log p(x_missing | x_observed) per row (nats): exact for an autoregressive model whose
    order puts the observed dimensions first (the chain-rule terms of the missing ones)."""
    if not observed_first(model, observed):
        raise ChainruleError(
            "the exact conditional likelihood needs a single-order autoregressive model whose order"
            " puts every observed dimension first (for a raster model: the bottom or a bottom part missing)"
        )
    with torch.no_grad():
        terms = model.log_prob_terms(x.to(model_device(model)))
    return terms[:, ~observed.to(terms.device)].sum(-1)


def completion_report(
    model: Model,
    x: torch.Tensor,
    observed: torch.Tensor,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float | int | None]]:
    """Complete every row of x (see `complete`) and measure it: the completions (B, samples, D) and
    a dict with the seconds taken, the number of missing dimensions and, when exact
    (`observed_first`), the mean log p(missing | observed) as an NLL in nats with its standard error."""
    import time

    model.eval()
    t = time.time()
    filled = complete(model, x, observed, samples, generator)
    stats: dict[str, float | int | None] = {"seconds": round(time.time() - t, 2)}
    stats["missing_dims"] = int((~observed).sum())
    if observed_first(model, observed):
        stats.update(conditional_nll_stats(-conditional_log_prob(model, x, observed)))
    return filled, stats


def conditional_nll_stats(nll: torch.Tensor, dim: int | None = None) -> dict[str, float | None]:
    """The mean of per-example conditional NLLs (nats), its standard error (None for one example)
    and, given the number of dimensions scored, the mean in bits/dim: what every conditional task
    (completion, super-resolution, colourisation) reports."""
    stats: dict[str, float | None] = {
        "conditional_nll_nats": float(nll.mean()),
        "conditional_nll_stderr": float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else None,
    }
    if dim is not None:
        stats["conditional_bits_per_dim"] = float(nll.mean()) / dim / math.log(2)
    return stats
