"""Naive Bayes: p(y) prod_j p(x_j | y), fitted by counting with Lidstone smoothing, in log space.

Two feature models, with the same estimates as scikit-learn's `BernoulliNB` and `MultinomialNB`:

- Bernoulli (binary presence): p(x_j = 1 | y=c) = (N_cj + alpha) / (N_c + 2 alpha), where N_cj
  counts class-c examples with feature j on and N_c counts class-c examples.
- Multinomial (counts): each token is a draw from theta_c, theta_cj = (N_cj + alpha) /
  (sum_k N_ck + alpha V), where N_cj is the total count of feature j in class c.

alpha = 1 is Laplace smoothing; other alpha > 0 is Lidstone. Missing features (NaN) are
marginalised out. For the Bernoulli model that drops the factor p(x_j | y). For the
multinomial model it drops the word from the vocabulary: the remaining tokens follow
theta_c renormalised over the observed words. In both cases this gives exactly the
classifier fitted and evaluated on the reduced feature set (tested).
"""

from __future__ import annotations

import math

import torch

from chainrule.classifiers.base import Classifier, check_features, check_labels
from chainrule.errors import ChainruleError


class NaiveBayes(Classifier):
    """Shared fitting of the class prior; subclasses give the per-class feature log-likelihood."""

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_prior: bool = True,
        class_prior: torch.Tensor | list[float] | None = None,
        num_classes: int | None = None,
    ):
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
            raise ChainruleError(
                f"alpha must be a positive number (1 = Laplace smoothing), got {alpha!r}; alpha = 0"
                " gives zero probability to any word unseen in a class"
            )
        self.alpha = float(alpha)
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.given_num_classes = num_classes
        self.num_classes = 0

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> NaiveBayes:
        """Estimate p(y) and p(x_j | y) from complete training data (x (N, D), y (N,))."""
        x = check_features(x)
        self._check_values(x, "x")
        y = check_labels(y, x.shape[0], self.given_num_classes)
        k = self._num_classes(y, self.given_num_classes)
        onehot = torch.nn.functional.one_hot(y, k).double()  # (N, K)
        class_count = onehot.sum(0)
        if (class_count == 0).any():
            missing = torch.nonzero(class_count == 0).flatten().tolist()
            raise ChainruleError(f"class(es) {missing} have no training examples")
        self.class_count = class_count
        self.feature_count = onehot.T @ x  # (K, D)
        self.class_log_prior = self._log_prior(class_count)
        self.num_features = x.shape[1]
        self._fit_features()
        self.num_classes = k
        return self

    def _log_prior(self, class_count: torch.Tensor) -> torch.Tensor:
        k = class_count.numel()
        if self.class_prior is not None:
            prior = torch.as_tensor(self.class_prior, dtype=torch.float64)
            if prior.shape != (k,) or (prior < 0).any() or not math.isclose(float(prior.sum()), 1.0):
                raise ChainruleError(f"class_prior must be {k} non-negative numbers summing to 1")
            return prior.log()
        if self.fit_prior:
            return class_count.log() - class_count.sum().log()
        return torch.full((k,), -math.log(k), dtype=torch.float64)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_observed, y=c) for every class: (N, K). NaN entries of x are missing features."""
        self._require_fitted()
        x = check_features(x, num_features=self.num_features, allow_nan=True)
        self._check_values(x, "x")
        observed = ~torch.isnan(x)
        return self._feature_log_likelihood(torch.where(observed, x, 0.0), observed) + self.class_log_prior

    def predict_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y | x_observed) by Bayes rule: (N, K), each row normalised with logsumexp."""
        joint = self.joint_log_prob(x)
        return joint - torch.logsumexp(joint, 1, keepdim=True)

    # -- what subclasses provide --------------------------------------------------------------
    def _check_values(self, x: torch.Tensor, what: str) -> None:
        raise NotImplementedError

    def _fit_features(self) -> None:
        raise NotImplementedError

    def _feature_log_likelihood(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class BernoulliNaiveBayes(NaiveBayes):
    """Binary features (word present or not); absent features count as evidence too."""

    def _check_values(self, x: torch.Tensor, what: str) -> None:
        bad = ~torch.isnan(x) & (x != 0) & (x != 1)
        if bad.any():
            raise ChainruleError(
                f"{what} must be binary (0 or 1, or NaN for missing); found {x[bad][0].item()!r}."
                " Use presence features, e.g. (counts > 0).float()"
            )

    def _fit_features(self) -> None:
        num = self.feature_count + self.alpha
        den = self.class_count[:, None] + 2 * self.alpha
        self.feature_log_prob = num.log() - den.log()  # log p(x_j = 1 | c), (K, D)
        self.feature_log_prob_off = (den - num).log() - den.log()  # log p(x_j = 0 | c)

    def _feature_log_likelihood(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        off = observed.double() - x  # 1 where observed and 0
        return x @ self.feature_log_prob.T + off @ self.feature_log_prob_off.T


class MultinomialNaiveBayes(NaiveBayes):
    """Count features (bag of words); `joint_log_prob` is the log-probability of the counts given
    the message length, multinomial coefficient included (it does not depend on the class)."""

    def _check_values(self, x: torch.Tensor, what: str) -> None:
        bad = x < 0
        if bad.any():
            raise ChainruleError(f"{what} must hold non-negative counts; found {x[bad][0].item()!r}")

    def _fit_features(self) -> None:
        smoothed = self.feature_count + self.alpha
        self.feature_log_prob = smoothed.log() - smoothed.sum(1, keepdim=True).log()  # (K, D)

    def _feature_log_likelihood(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        length = x.sum(1, keepdim=True)
        coefficient = torch.lgamma(length + 1) - torch.lgamma(x + 1).sum(1, keepdim=True)
        ll = x @ self.feature_log_prob.T + coefficient
        if observed.all():
            return ll
        # renormalise theta_c over the observed words: log sum_{j observed} theta_cj, per row.
        mass = observed.double() @ self.feature_log_prob.exp().T  # (N, K)
        return ll - torch.where(length > 0, length * mass.log(), 0.0)
