"""L2-regularised logistic regression, trained to convergence with L-BFGS in float64.

Objective, scikit-learn's convention for `LogisticRegression(C=...)`:
    minimise  C * sum_i -log p(y_i | x_i)  +  0.5 * ||W||^2      (intercept not penalised)
Two classes use one weight vector and a sigmoid (as scikit-learn does); K > 2 classes use K
vectors and a softmax. `C = inf` removes the penalty (the optimum may then not exist on
separable data). The objective is divided by C * N before optimising: same minimiser,
better-scaled gradients.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from chainrule.classifiers.base import Classifier, check_features, check_labels
from chainrule.errors import ChainruleError


class LogisticRegression(Classifier):
    """Linear discriminative classifier p(y | x) = softmax(W^T x + b)."""

    def __init__(
        self,
        C: float = 1.0,  # noqa: N803 (scikit-learn's name)
        *,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-9,
        num_classes: int | None = None,
    ):
        if not (isinstance(C, int | float) and C > 0):
            raise ChainruleError(f"C must be a positive number (inverse regularisation strength), got {C!r}")
        if max_iter < 1:
            raise ChainruleError(f"max_iter must be >= 1, got {max_iter}")
        self.C = float(C)
        self.fit_intercept = fit_intercept
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.given_num_classes = num_classes
        self.num_classes = 0

    def _logits(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return x @ weight + bias

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> LogisticRegression:
        """Minimise the regularised log-loss on (x (N, D), y (N,)); sets `converged` and `n_iter`."""
        x = check_features(x)
        y = check_labels(y, x.shape[0], self.given_num_classes)
        k = self._num_classes(y, self.given_num_classes)
        outputs = 1 if k == 2 else k
        n, d = x.shape
        weight = torch.zeros(d, outputs, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(outputs, dtype=torch.float64, requires_grad=self.fit_intercept)
        params = [weight, bias] if self.fit_intercept else [weight]
        penalty = 0.0 if math.isinf(self.C) else 1.0 / (self.C * n)

        def objective() -> torch.Tensor:
            logits = self._logits(x, weight, bias)
            if k == 2:
                loss = F.binary_cross_entropy_with_logits(logits[:, 0], y.double())
            else:
                loss = F.cross_entropy(logits, y)
            return loss + 0.5 * penalty * weight.pow(2).sum()

        opt = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=self.max_iter,
            max_eval=2 * self.max_iter,
            tolerance_grad=self.tol,
            tolerance_change=1e-14,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            value = objective()
            value.backward()
            return value

        opt.step(closure)
        self.n_iter = int(opt.state[params[0]].get("n_iter", 0))
        grad = torch.cat([p.grad.flatten() for p in params]).abs().max()
        self.converged = bool(grad <= max(self.tol, 1e-7))
        if not self.converged:
            warnings.warn(
                f"LogisticRegression stopped after {self.n_iter} L-BFGS iterations with gradient"
                f" {float(grad):.2e}; raise max_iter or lower C",
                stacklevel=2,
            )
        self.weight, self.bias = weight.detach(), bias.detach()
        self.objective = float(objective().detach()) * self.C * n if penalty else float("nan")
        self.num_features = d
        self.num_classes = k
        return self

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: (N,) for two classes (log-odds of class 1), (N, K) otherwise."""
        self._require_fitted()
        x = check_features(x, num_features=self.num_features)
        logits = self._logits(x, self.weight, self.bias)
        return logits[:, 0] if self.num_classes == 2 else logits

    def predict_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y = c | x): log-sigmoid of the logit for two classes, log-softmax otherwise; (N, K)."""
        logits = self.decision_function(x)
        if self.num_classes == 2:
            return torch.stack([F.logsigmoid(-logits), F.logsigmoid(logits)], 1)
        return F.log_softmax(logits, 1)
