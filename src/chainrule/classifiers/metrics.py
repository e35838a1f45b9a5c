"""Accuracy and log-loss (mean negative log-probability of the true class, in nats)."""

from __future__ import annotations

import torch

from chainrule.classifiers.checks import check_labels
from chainrule.errors import ChainruleError


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of `pred` equal to `y`."""
    y = check_labels(y, pred.shape[0])
    return float((pred.long() == y).double().mean())


def log_loss(log_proba: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of -log p(y_i | x_i) over examples, from a (N, K) matrix of log-probabilities."""
    if log_proba.dim() != 2:
        raise ChainruleError(f"log_proba has shape {tuple(log_proba.shape)}; expected (N, K)")
    y = check_labels(y, log_proba.shape[0], log_proba.shape[1])
    return float(-log_proba.double().gather(1, y[:, None]).mean())
