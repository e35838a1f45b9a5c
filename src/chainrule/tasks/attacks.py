"""Adversarial examples against a differentiable image classifier: FGSM and PGD in the L∞ ball.

ε is on the [0, 1] pixel scale (8/255 moves a pixel of an 8-bit image by 8 levels). Attacks work
on images given as levels 0..L-1 and return levels: the perturbed image is rounded back to the L
levels (and kept inside the ε-ball on that grid: at most ⌊ε (L-1)⌋ levels from the original), so
a density model of L-level images can score it. Both maximise the cross-entropy of the true label
(untargeted attacks):

- FGSM (Goodfellow et al. 2015): x' = clip(x + ε sign(∇ₓ loss), 0, 1), one step.
- PGD (Madry et al. 2018): a uniform random start in the ε-ball, then `steps` steps of
  `step_size` sign(∇ₓ loss), each followed by projection onto the ε-ball and [0, 1].

The classifier needs `scaled_logits(u)` (logits of [0, 1]-scaled images, differentiable in u),
`num_values` and `image_shape`, as `chainrule.classifiers.CNNClassifier` has.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Protocol

import torch
import torch.nn.functional as F

from chainrule.classifiers.base import check_labels
from chainrule.devices import draw
from chainrule.errors import ChainruleError

ATTACKS = ("fgsm", "pgd")


class DifferentiableClassifier(Protocol):
    num_values: int

    def scaled_logits(self, u: torch.Tensor) -> torch.Tensor: ...


def check_epsilon(eps: float, what: str = "eps") -> float:
    """ε as a float in [0, 1] (the [0, 1] pixel scale), or a clear error."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ChainruleError(f"{what} must be a number in [0, 1], got {eps!r}")
    if math.isnan(eps) or not 0.0 <= eps <= 1.0:
        raise ChainruleError(
            f"{what}={eps} is outside [0, 1]: ε is on the [0, 1] pixel scale (8/255 = 8 grey levels)"
        )
    return float(eps)


def parse_epsilon(text: str, what: str = "eps") -> float:
    """'8/255', '0.03' or '0' → a float in [0, 1]."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ChainruleError(f"{what} must be a number or a fraction like 8/255, got {text!r}") from None
    return check_epsilon(value, what)


def epsilon_levels(eps: float, num_values: int) -> int:
    """The largest whole number of levels inside an ε-ball: ⌊ε (L-1)⌋ (8 for ε = 8/255, L = 256)."""
    return int(math.floor(check_epsilon(eps) * (num_values - 1) + 1e-9))


def _check_inputs(classifier, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not callable(getattr(classifier, "scaled_logits", None)):
        raise ChainruleError(
            f"{type(classifier).__name__} cannot be attacked: the attacks need a differentiable classifier"
            " with scaled_logits(u) (chainrule.classifiers.CNNClassifier)"
        )
    check = getattr(classifier, "check_images", None)
    x = check(x) if check is not None else x.to(torch.float32)
    return x, check_labels(y, x.shape[0], getattr(classifier, "num_classes", None))


def loss_gradient(classifier: DifferentiableClassifier, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ᵤ of the summed cross-entropy of the labels y at [0, 1]-scaled images u (N, D)."""
    u = u.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(classifier.scaled_logits(u), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, u)
    return grad


def to_levels(u: torch.Tensor, x: torch.Tensor, eps: float, num_values: int) -> torch.Tensor:
    """[0, 1]-scaled perturbed images → levels, rounded and kept within ⌊ε (L-1)⌋ levels of x."""
    k = epsilon_levels(eps, num_values)
    moved = torch.round(u * (num_values - 1)) - x
    return (x + moved.clamp(-k, k)).clamp(0, num_values - 1)


def fgsm(
    classifier: DifferentiableClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    round_to_levels: bool = True,
    batch_size: int = 500,
) -> torch.Tensor:
    """Fast gradient sign method: each pixel moves by ε in the sign of the loss gradient, then is
    clipped to [0, 1]. Images and result in levels (N, D); unrounded with `round_to_levels=False`."""
    eps = check_epsilon(eps)
    x, y = _check_inputs(classifier, x, y)
    levels = classifier.num_values - 1
    out = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        u = xb / levels
        adv = (u + eps * loss_gradient(classifier, u, yb).sign()).clamp(0, 1)
        out.append(to_levels(adv, xb, eps, classifier.num_values) if round_to_levels else adv * levels)
    return torch.cat(out)


def pgd(
    classifier: DifferentiableClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    round_to_levels: bool = True,
    batch_size: int = 500,
) -> torch.Tensor:
    """Projected gradient descent (L∞): random start in the ε-ball, `steps` signed-gradient steps
    of `step_size` (default 2.5 ε / steps, Madry et al.), each projected back onto the ε-ball and
    [0, 1]. Images and result in levels (N, D)."""
    eps = check_epsilon(eps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ChainruleError(f"PGD steps must be a positive integer, got {steps!r}")
    step = 2.5 * eps / steps if step_size is None else float(step_size)
    if not (math.isfinite(step) and step >= 0):
        raise ChainruleError(f"PGD step size must be a finite number >= 0, got {step_size!r}")
    x, y = _check_inputs(classifier, x, y)
    levels = classifier.num_values - 1
    out = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        u0 = xb / levels
        u = u0
        if random_start:
            noise = draw(torch.rand, u0.shape, generator=generator, device=u0.device, dtype=u0.dtype) * 2 - 1
            u = (u0 + eps * noise).clamp(0, 1)
        for _ in range(steps):
            u = u + step * loss_gradient(classifier, u, yb).sign()
            u = torch.minimum(torch.maximum(u, u0 - eps), u0 + eps).clamp(0, 1)
        out.append(to_levels(u, xb, eps, classifier.num_values) if round_to_levels else u * levels)
    return torch.cat(out)


def attack(
    name: str,
    classifier: DifferentiableClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    **kwargs,
) -> torch.Tensor:
    """Run the attack called `name` ("fgsm" or "pgd"; PGD takes steps, step_size, generator)."""
    if name == "fgsm":
        kwargs = {k: v for k, v in kwargs.items() if k not in ("steps", "step_size", "generator")}
        return fgsm(classifier, x, y, eps, **kwargs)
    if name == "pgd":
        return pgd(classifier, x, y, eps, **kwargs)
    raise ChainruleError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
