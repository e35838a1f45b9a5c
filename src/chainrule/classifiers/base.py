"""What every classifier provides (the input checks they share are in checks.py)."""

from __future__ import annotations

import torch

from chainrule.classifiers.checks import check_features, check_labels
from chainrule.classifiers.metrics import accuracy
from chainrule.errors import ChainruleError

__all__ = ["Classifier", "check_features", "check_labels"]


class Classifier:
    """Base: subclasses implement `predict_log_proba(x) -> (N, K)` (rows sum to 1 in probability)."""

    num_classes: int = 0
    #: (H, W) or (H, W, C) of the images a classifier reads, or None for flat features
    image_shape: tuple[int, ...] | None = None

    def predict_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y = c | x) for every class: (N, K), each row normalised."""
        raise NotImplementedError

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """p(y = c | x) for every class: (N, K), rows summing to 1."""
        return self.predict_log_proba(x).exp()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable class of each example (ties go to the lower index)."""
        return self.predict_log_proba(x).argmax(1)

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy on (x, y)."""
        return accuracy(self.predict(x), y)

    def _require_fitted(self) -> None:
        if not self.num_classes:
            raise ChainruleError(f"{type(self).__name__} is not fitted; call fit(x, y) first")

    def _num_classes(self, y: torch.Tensor, given: int | None) -> int:
        k = int(y.max()) + 1 if given is None else int(given)
        if k < 2:
            raise ChainruleError(f"need at least 2 classes, got labels 0..{k - 1}")
        return k
