"""The full joint table p(x) = theta[x_1, ..., x_n]: every distribution, prod(k) - 1 parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.parameters import full_joint_parameters
from chainrule.graphical.tabular import (
    TabularModel,
    check_cardinalities,
    check_n,
    counts,
    default_names,
)

MAX_CELLS = 50_000_000


class FullJointModel(TabularModel):
    """One probability per joint state, stored as a float64 tensor shaped like `cardinalities`.

    Only feasible for few variables: the table grows as prod(k); construction refuses more than
    MAX_CELLS cells. Missing values (-1) in log_prob are summed out of the table.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        table: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
    ):
        self.cardinalities = check_cardinalities(cardinalities)
        self.names = default_names(len(self.cardinalities), names)
        size = math.prod(self.cardinalities)
        if size > MAX_CELLS:
            raise ChainruleError(
                f"a full joint table over cardinalities {self.cardinalities} has {size:,} cells"
                f" (limit {MAX_CELLS:,}); use a Bayesian network or a Markov chain instead"
            )
        if table is None:
            table = torch.full(tuple(self.cardinalities), 1.0 / size, dtype=torch.float64)
        self._set_table(table)

    def _set_table(self, table: torch.Tensor) -> None:
        try:
            t = torch.as_tensor(table, dtype=torch.float64).clone().contiguous()
        except (TypeError, ValueError, RuntimeError) as e:
            raise ChainruleError(f"the joint table is not numeric: {e}") from None
        if tuple(t.shape) != tuple(self.cardinalities):
            raise ChainruleError(
                f"the joint table has shape {tuple(t.shape)}; expected {tuple(self.cardinalities)}"
            )
        if not torch.isfinite(t).all() or (t < 0).any():
            raise ChainruleError("the joint table must hold finite, non-negative probabilities")
        total = float(t.sum())
        if abs(total - 1) > 1e-6:
            raise ChainruleError(f"the joint table sums to {total:.9g}, not 1 (tolerance 1e-06)")
        self.table = t
        self._log = torch.log(t)
        c = t.reshape(-1).cumsum(0)
        self._cdf = c / c[-1]

    def num_parameters(self) -> int:
        return full_joint_parameters(self.cardinalities)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log theta[x] per row; missing entries (-1) are summed out of the table."""
        x = self.check_data(x, allow_missing=True, what="x")
        missing = x < 0
        if not missing.any():
            return self._log[tuple(x.t())]
        out = torch.empty(x.shape[0], dtype=torch.float64)
        patterns, inverse = torch.unique(missing, dim=0, return_inverse=True)
        for k in range(patterns.shape[0]):
            sel = (inverse == k).nonzero().squeeze(1)
            hidden = [j for j in range(self.num_variables) if patterns[k, j]]
            observed = [j for j in range(self.num_variables) if not patterns[k, j]]
            marg = self.table.sum(dim=hidden) if hidden else self.table
            if not observed:
                out[sel] = torch.log(marg)
                continue
            out[sel] = torch.log(marg[tuple(x[sel][:, observed].t())])
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = check_n(n)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        flat = torch.searchsorted(self._cdf, u, right=True).clamp_max(self._cdf.numel() - 1)
        x = torch.empty(n, self.num_variables, dtype=torch.long)
        for j in range(self.num_variables - 1, -1, -1):
            x[:, j] = flat % self.cardinalities[j]
            flat = flat // self.cardinalities[j]
        return x

    def fit(self, data: torch.Tensor, alpha: float = 1.0) -> FullJointModel:
        """theta = (count + alpha) / (N + alpha * prod(k)); returns self."""
        x = self.check_data(data, allow_missing=False, what="data")
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise ChainruleError(f"alpha must be a finite number >= 0, got {alpha}")
        c = counts(x, self.cardinalities) + alpha
        self._set_table(c / c.sum())
        return self
