"""Generative classification with one class-conditional model: p(y | x) ∝ p(x | y) p(y).

A class-conditional model (`model.class_conditional`, e.g. `GatedPixelCNN(num_classes=10)`)
gives log p(x | y = c) as `model.log_prob(x, cond=c)`. `class_densities` turns it into K
per-class densities, each with `log_prob(x)`, which `chainrule.classifiers.GenerativeClassifier`
combines with a prior by Bayes rule; `generative_classifier` does both, with the prior counted
from training labels.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.classifiers.bayes_rule import GenerativeClassifier, log_prior_from_labels
from chainrule.errors import ChainruleError


class ClassDensity(nn.Module):
    """p(x | y = `label`) of a class-conditional model, as a density with `log_prob(x)`. A module
    holding the model, so `eval()` reaches it; `batch_size` bounds memory."""

    def __init__(self, model: nn.Module, label: int, batch_size: int = 1000) -> None:
        super().__init__()
        self.model = model
        self.label = int(label)
        self.batch_size = int(batch_size)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | y = label) of every row, in nats: (N,)."""
        out = []
        for xb in x.split(self.batch_size):
            cond = torch.full((xb.shape[0],), self.label, dtype=torch.long)
            out.append(self.model.log_prob(xb, cond=cond))
        return torch.cat(out)


def class_densities(model, batch_size: int = 1000) -> list[ClassDensity]:
    """One density per class of a class-conditional model: [p(x | y = 0), ..., p(x | y = K-1)]."""
    if not getattr(model, "class_conditional", False):
        raise ChainruleError(
            f"{getattr(model, 'registry_name', type(model).__name__)!r} is not class-conditional: build it"
            " with num_classes (e.g. GatedPixelCNN(..., num_classes=10)) and train it with labels"
        )
    return [ClassDensity(model, c, batch_size) for c in range(int(model.num_classes))]


def generative_classifier(
    model,
    train_labels: torch.Tensor | None = None,
    *,
    alpha: float = 0.0,
    batch_size: int = 1000,
) -> GenerativeClassifier:
    """Bayes-rule classifier from one class-conditional model; the prior is the label frequencies of
    `train_labels` (plus `alpha` per class), or uniform when None."""
    densities = class_densities(model, batch_size)
    prior = None
    if train_labels is not None:
        prior = log_prior_from_labels(torch.as_tensor(train_labels), len(densities), alpha)
    return GenerativeClassifier(densities, prior)
