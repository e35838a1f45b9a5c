"""The full joint table p(x) = theta[x_1, ..., x_n]: every distribution, prod(k) - 1 parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bn_tables import default_table, seeded
from chainrule.graphical.parameters import full_joint_parameters
from chainrule.graphical.tabular import (
    TabularModel,
    check_cardinalities,
    completion_codes,
    counts,
    default_names,
    sample_rows,
)
from chainrule.models.base import register_model

MAX_CELLS = 50_000_000


@register_model("full-joint")
class FullJointModel(TabularModel):
    """One probability per joint state, stored as a float64 buffer `table` shaped like `cardinalities`.

    Only feasible for few variables: the table grows as prod(k); construction refuses more than
    MAX_CELLS cells. Missing values (-1) in log_prob are summed out of the table. The table is
    uniform by default, random (flat Dirichlet) with `seed`.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        table: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        self.cardinalities = check_cardinalities(cardinalities)
        self.names = default_names(len(self.cardinalities), names)
        self._declare(self.cardinalities)
        size = math.prod(self.cardinalities)
        if size > MAX_CELLS:
            raise ChainruleError(
                f"a full joint table over cardinalities {self.cardinalities} has {size:,} cells"
                f" (limit {MAX_CELLS:,}); use a Bayesian network or a Markov chain instead"
            )
        if table is None:
            table = default_table((size,), seeded(seed)).reshape(self.cardinalities)
        self._set_table(table)
        self.remember_config({"cardinalities": self.cardinalities, "names": self.names})
        self.register_load_state_dict_post_hook(lambda module, _keys: module._refresh())

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """Three variables of cardinalities 2, 3, 2 with a random joint table (seed 0)."""
        return {"cardinalities": [2, 3, 2], "seed": 0}

    def _set_table(self, table: torch.Tensor) -> None:
        try:
            t = torch.as_tensor(table, dtype=torch.float64).detach().cpu().clone().contiguous()
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
        if "table" in self._buffers:
            self._buffers["table"] = t.to(self._device())
        else:
            self.register_buffer("table", t)
        self._refresh()

    def _refresh(self) -> None:
        """Derived CPU tables (joint, log, flat CDF) from the buffer: after loads and moves too."""
        self._table = self.table.detach().to("cpu", torch.float64)
        self._log = torch.log(self._table)
        c = self._table.reshape(-1).cumsum(0)
        self._cdf = c / c[-1]

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - nn.Module's signature
        out = super()._apply(fn, *args, **kwargs)
        self._refresh()
        return out

    def num_parameters(self) -> int:
        return full_joint_parameters(self.cardinalities)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log theta[x] per row (float64, on the table's device); missing entries (-1) are summed
        out of the table."""
        self.check_cond(cond)
        x = self.check_data(x.cpu() if isinstance(x, torch.Tensor) else x, allow_missing=True, what="x")
        missing = x < 0
        if not missing.any():
            return self._log[tuple(x.t())].to(self._device())
        out = torch.empty(x.shape[0], dtype=torch.float64)
        patterns, inverse = torch.unique(missing, dim=0, return_inverse=True)
        for k in range(patterns.shape[0]):
            sel = (inverse == k).nonzero().squeeze(1)
            hidden = [j for j in range(self.num_variables) if patterns[k, j]]
            observed = [j for j in range(self.num_variables) if not patterns[k, j]]
            marg = self._table.sum(dim=hidden) if hidden else self._table
            if not observed:
                out[sel] = torch.log(marg)
                continue
            out[sel] = torch.log(marg[tuple(x[sel][:, observed].t())])
        return out.to(self._device())

    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` draws (n, num_variables); with `given`/`mask` (True = observed) the unobserved entries
        are drawn from the exact conditional: the table sliced at the observed values."""
        n = self.check_sample_request(n, cond, generator)
        if given is not None or mask is not None:
            return self._complete(
                *completion_codes(given, mask, n, self.cardinalities, self.names), generator
            )
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        flat = torch.searchsorted(self._cdf, u, right=True).clamp_max(self._cdf.numel() - 1)
        return self._decode(flat, list(range(self.num_variables))).to(self._device())

    def _decode(self, flat: torch.Tensor, columns: list[int]) -> torch.Tensor:
        """Row-major flat indices over the variables `columns` as codes (len(flat), len(columns))."""
        x = torch.empty(flat.shape[0], len(columns), dtype=torch.long)
        for k in range(len(columns) - 1, -1, -1):
            x[:, k] = flat % self.cardinalities[columns[k]]
            flat = flat // self.cardinalities[columns[k]]
        return x

    def _complete(
        self, x: torch.Tensor, observed: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        x = x.clone()
        patterns, inverse = torch.unique(observed, dim=0, return_inverse=True)
        for k in range(patterns.shape[0]):
            rows = (inverse == k).nonzero().squeeze(1)
            obs = [j for j in range(self.num_variables) if patterns[k, j]]
            hid = [j for j in range(self.num_variables) if not patterns[k, j]]
            if not hid:
                continue
            t = self._table.permute(*obs, *hid).reshape(-1, math.prod(self.cardinalities[j] for j in hid))
            flat_obs = torch.zeros(rows.shape[0], dtype=torch.long)
            for j in obs:
                flat_obs = flat_obs * self.cardinalities[j] + x[rows, j]
            probs = t[flat_obs]
            total = probs.sum(1, keepdim=True)
            if not (total > 0).all():
                raise ChainruleError(
                    "a given row has probability zero under this model: it cannot be completed"
                )
            cdf = probs.cumsum(1)
            x[rows[:, None], torch.tensor(hid)] = self._decode(sample_rows(cdf / cdf[:, -1:], generator), hid)
        return x.to(self._device())

    def fit(self, data: torch.Tensor, alpha: float = 1.0) -> FullJointModel:
        """theta = (count + alpha) / (N + alpha * prod(k)); returns self."""
        x = self.check_data(data.cpu() if isinstance(data, torch.Tensor) else data, what="data")
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise ChainruleError(f"alpha must be a finite number >= 0, got {alpha}")
        c = counts(x, self.cardinalities) + alpha
        self._set_table(c / c.sum())
        return self
