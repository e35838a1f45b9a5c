"""How well a score separates in-distribution from out-of-distribution inputs: AUROC, AUPR and the
false-positive rate at 95 % true-positive rate, with OOD inputs as the positive class.

All three come from one sweep over the distinct score values (higher = more anomalous), so tied
scores are one threshold: AUROC then counts a tied (OOD, in) pair as one half, like the
Mann-Whitney statistic and `sklearn.metrics.roc_auc_score`; AUPR is the average precision
Σ (Rₙ - Rₙ₋₁) Pₙ, like `sklearn.metrics.average_precision_score` (no interpolation); FPR@95 is the
false-positive rate at the first threshold whose true-positive rate reaches 0.95 (the first point
of `sklearn.metrics.roc_curve(..., drop_intermediate=False)` with tpr >= 0.95).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from chainrule.errors import ChainruleError


def _as_array(values: torch.Tensor | np.ndarray | list[float], what: str) -> np.ndarray:
    a = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    a = a.astype(np.float64).reshape(-1)
    if not np.isfinite(a).all():
        raise ChainruleError(
            f"{what} contain {int((~np.isfinite(a)).sum())} non-finite value(s) (NaN or inf)"
        )
    return a


def roc_points(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, precision) at every distinct threshold, highest first, starting after (0, 0).

    `labels` are 1 for positives (OOD), 0 for negatives; a score >= threshold is called positive."""
    s = _as_array(scores, "scores")
    y = _as_array(labels, "labels")
    if s.shape != y.shape:
        raise ChainruleError(f"{len(s)} scores but {len(y)} labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ChainruleError("labels must be 0 (in-distribution) or 1 (out-of-distribution)")
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        raise ChainruleError(
            f"need both in-distribution and OOD inputs, got {int(negatives)} and {int(positives)}"
        )
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_value = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # end of each run of tied scores
    tp = np.cumsum(y)[last_of_value]
    fp = (last_of_value + 1) - tp
    return fp / negatives, tp / positives, tp / (tp + fp)


def auroc(scores, labels) -> float:
    """Area under the ROC curve (trapezoids: ties count one half)."""
    fpr, tpr, _ = roc_points(scores, labels)
    fpr, tpr = np.r_[0.0, fpr], np.r_[0.0, tpr]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def aupr(scores, labels) -> float:
    """Area under the precision-recall curve as average precision, OOD = positive."""
    _, tpr, precision = roc_points(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, tpr]) * precision))


def fpr_at_tpr(scores, labels, tpr_level: float = 0.95) -> float:
    """False-positive rate at the highest threshold whose true-positive rate is >= `tpr_level`."""
    if not 0.0 < tpr_level <= 1.0:
        raise ChainruleError(f"tpr_level must be in (0, 1], got {tpr_level!r}")
    fpr, tpr, _ = roc_points(scores, labels)
    return float(fpr[np.argmax(tpr >= tpr_level - 1e-12)])


@dataclass
class OODMetrics:
    """AUROC, AUPR (OOD positive) and FPR at 95 % TPR of one score; 1, 1, 0 is perfect."""

    auroc: float
    aupr: float
    fpr_at_95_tpr: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)


def ood_metrics(in_scores, ood_scores) -> OODMetrics:
    """Metrics of a score given its values on in-distribution and on OOD inputs."""
    a, b = _as_array(in_scores, "in-distribution scores"), _as_array(ood_scores, "OOD scores")
    scores, labels = np.r_[a, b], np.r_[np.zeros(len(a)), np.ones(len(b))]
    return OODMetrics(auroc(scores, labels), aupr(scores, labels), fpr_at_tpr(scores, labels, 0.95))
