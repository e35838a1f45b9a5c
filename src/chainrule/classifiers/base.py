"""What every classifier provides, and the input checks they share (shapes, NaN, unknown labels)."""

from __future__ import annotations

import torch

from chainrule.errors import ChainruleError


def check_features(
    x: torch.Tensor,
    what: str = "x",
    *,
    num_features: int | None = None,
    allow_nan: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Return `x` as a (N, D) tensor of `dtype`; refuse other shapes, infinities, and NaN unless
    `allow_nan` (NaN then marks a missing feature)."""
    if not isinstance(x, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ChainruleError(f"{what} has shape {tuple(x.shape)}; expected a non-empty (examples, features)")
    if num_features is not None and x.shape[1] != num_features:
        raise ChainruleError(f"{what} has {x.shape[1]} features; the classifier was fitted on {num_features}")
    x = x.to(dtype)
    if torch.isinf(x).any():
        raise ChainruleError(f"{what} contains {int(torch.isinf(x).sum())} infinite value(s)")
    if not allow_nan and torch.isnan(x).any():
        raise ChainruleError(
            f"{what} contains {int(torch.isnan(x).sum())} NaN value(s); this classifier needs complete"
            " features (impute them first, or use Naive Bayes, which marginalises missing features)"
        )
    return x


def check_labels(y: torch.Tensor, n: int, num_classes: int | None = None, what: str = "y") -> torch.Tensor:
    """Return `y` as a long tensor (n,) of class indices 0..num_classes-1."""
    if not isinstance(y, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ChainruleError(f"{what} has shape {tuple(y.shape)}; expected ({n},), one label per example")
    if y.is_floating_point() and (torch.isnan(y).any() or (y != torch.round(y)).any()):
        raise ChainruleError(f"{what} must hold integer class indices 0..K-1")
    y = y.long()
    if (y < 0).any():
        raise ChainruleError(f"{what} holds negative label {int(y.min())}; labels are class indices 0..K-1")
    if num_classes is not None and (y >= num_classes).any():
        raise ChainruleError(
            f"{what} holds unknown label {int(y.max())}; this classifier knows classes 0..{num_classes - 1}"
        )
    return y


class Classifier:
    """Base: subclasses implement `predict_log_proba(x) -> (N, K)` (rows sum to 1 in probability)."""

    num_classes: int = 0

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
        from chainrule.classifiers.metrics import accuracy

        return accuracy(self.predict(x), y)

    def _require_fitted(self) -> None:
        if not self.num_classes:
            raise ChainruleError(f"{type(self).__name__} is not fitted; call fit(x, y) first")

    def _num_classes(self, y: torch.Tensor, given: int | None) -> int:
        k = int(y.max()) + 1 if given is None else int(given)
        if k < 2:
            raise ChainruleError(f"need at least 2 classes, got labels 0..{k - 1}")
        return k
