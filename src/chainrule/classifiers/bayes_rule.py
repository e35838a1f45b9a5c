"""Any density per class plus a prior is a classifier: p(y | x) = p(x | y) p(y) / sum_c p(x | c) p(c).

`class_models[c]` is anything with `log_prob(x) -> (N,)` in nats (every chainrule model): for
example a NADE fitted by `chainrule.fit` on the examples of class c.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from chainrule.classifiers.base import Classifier, check_labels
from chainrule.errors import ChainruleError


class Density(Protocol):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


def log_prior_from_labels(
    y: torch.Tensor, num_classes: int | None = None, alpha: float = 0.0
) -> torch.Tensor:
    """log p(y) from label frequencies, with `alpha` added to each count (float64, (K,))."""
    if not isinstance(y, torch.Tensor) or y.dim() != 1:
        raise ChainruleError("y must be a 1-D tensor of class indices")
    y = check_labels(y, y.shape[0], num_classes)
    counts = torch.bincount(y, minlength=num_classes or 0).double() + alpha
    return counts.log() - counts.sum().log()


class GenerativeClassifier(Classifier):
    """Bayes rule over `class_models`; `log_prior` = log p(y) (normalised here; None = uniform).

    Prediction puts torch.nn.Module models in eval mode (as `evaluate_nll` does) and runs
    without gradients; model errors (wrong shape, NaN, non-binary values) propagate unchanged.
    """

    def __init__(
        self,
        class_models: Sequence[Density],
        log_prior: torch.Tensor | Sequence[float] | None = None,
    ):
        models = list(class_models)
        if len(models) < 2:
            raise ChainruleError(f"need a model for each of at least 2 classes, got {len(models)}")
        for c, m in enumerate(models):
            if not callable(getattr(m, "log_prob", None)):
                raise ChainruleError(f"class_models[{c}] ({type(m).__name__}) has no log_prob method")
        k = len(models)
        if log_prior is None:
            log_prior = torch.zeros(k, dtype=torch.float64)
        log_prior = torch.as_tensor(log_prior, dtype=torch.float64)
        if log_prior.shape != (k,) or torch.isnan(log_prior).any() or (log_prior == float("inf")).any():
            raise ChainruleError(
                f"log_prior must hold {k} log-probabilities (one per class model, -inf allowed),"
                f" got shape {tuple(log_prior.shape)}"
            )
        if torch.isinf(log_prior).all():
            raise ChainruleError("log_prior gives every class probability 0")
        self.class_models = models
        self.log_prior = log_prior - torch.logsumexp(log_prior, 0)
        self.num_classes = k

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | y=c) + log p(y=c) for every class: (N, K) in float64."""
        columns = []
        with torch.no_grad():
            for c, m in enumerate(self.class_models):
                if isinstance(m, torch.nn.Module):
                    m.eval()
                lp = m.log_prob(x)
                if lp.dim() != 1:
                    raise ChainruleError(
                        f"class_models[{c}].log_prob returned shape {tuple(lp.shape)}; expected (N,)"
                    )
                columns.append(lp.double())
        return torch.stack(columns, 1) + self.log_prior

    def predict_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y = c | x) by Bayes rule: `joint_log_prob` normalised over classes, (N, K)."""
        joint = self.joint_log_prob(x)
        return joint - torch.logsumexp(joint, 1, keepdim=True)
