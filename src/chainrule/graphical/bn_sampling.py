"""Sampling from a Bayesian network: ancestral draws, and exact completion of partly observed rows.

Completion draws the unobserved variables one at a time in topological order, each from its
exact conditional given the observed values and the values drawn so far. A variable with no
observed descendant is independent of everything before it given its parents (all of which come
earlier), so it is drawn from its CPD row; the others (ancestors of an observed variable) get
P(x_i = k | evidence) from log P(x_i = k, evidence), computed by variable elimination for a whole
batch of rows at once (one plan per signature, cached). The result is an exact draw from
p(x_unobserved | x_observed): the chain rule in topological order.
"""

from __future__ import annotations

import numpy as np
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.tabular import completion_codes, sample_rows


class SamplingMixin:
    """`sample` for BayesianNetwork (which supplies order, parents, strides and CDF tables)."""

    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` draws as integer codes (n, num_variables), on the tables' device. Without `given`:
        ancestral sampling, each variable from its CPD row given its sampled parents. With
        `given`/`mask` (True = observed): the unobserved entries drawn from their exact conditional
        given the observed ones (`exact_completion`)."""
        n = self.check_sample_request(n, cond, generator)
        if given is None and mask is None:
            x = torch.zeros(n, len(self.names), dtype=torch.long)
            for i in self._order:
                x[:, i] = self._draw_from_cpd(i, x, generator)
            return x.to(self._device())
        codes, observed = completion_codes(given, mask, n, self.cardinalities, self.names)
        out = codes.clone()
        if n:
            patterns, inverse = torch.unique(observed, dim=0, return_inverse=True)
            for k in range(patterns.shape[0]):
                rows = (inverse == k).nonzero().squeeze(1)
                out[rows] = self._complete(out[rows], patterns[k].tolist(), generator)
        return out.to(self._device())

    def _draw_from_cpd(self, i: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One draw of variable i per row of x from its CPD row given the parents' values in x."""
        ps = self._parents[i]
        cdf = self._cdf[i]
        if ps:
            cdf = cdf[x[:, list(ps)] @ self._strides[i][:-1] // self.cardinalities[i]]
        else:
            cdf = cdf.expand(x.shape[0], -1)
        return sample_rows(cdf, generator)

    def _complete(
        self, x: torch.Tensor, observed: list[bool], generator: torch.Generator | None
    ) -> torch.Tensor:
        """Fill the unobserved columns of x (rows sharing one observation pattern) exactly."""
        known = [j for j, o in enumerate(observed) if o]
        influenced = 0  # variables with an observed descendant (or observed themselves)
        for j in known:
            influenced |= self._ancestors[j]
        if known:
            self._check_possible(x, tuple(known))
        for i in self._order:
            if observed[i]:
                continue
            if influenced >> i & 1:
                x[:, i] = self._draw_conditional(i, x, known, generator)
            else:
                x[:, i] = self._draw_from_cpd(i, x, generator)
            known.append(i)
        return x

    def _check_possible(self, x: torch.Tensor, known: tuple[int, ...]) -> None:
        lp = self._log_evidence(tuple(sorted(known)), {j: x[:, j].numpy() for j in known})
        if not np.isfinite(lp).all():
            row = int(np.flatnonzero(~np.isfinite(lp))[0])
            raise ChainruleError(
                f"given row {row} has probability zero under this network: it cannot be completed"
            )

    def _draw_conditional(
        self, i: int, x: torch.Tensor, known: list[int], generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw x_i from P(x_i | x_known) for every row: log P(x_i = k, x_known) for each state k."""
        evidence = tuple(sorted([*known, i]))
        values = {j: x[:, j].numpy() for j in known}
        columns = []
        for k in range(self.cardinalities[i]):
            values[i] = np.full(x.shape[0], k, dtype=np.int64)
            columns.append(torch.from_numpy(self._log_evidence(evidence, values)))
        logits = torch.stack(columns, 1)
        probs = torch.exp(logits - logits.max(1, keepdim=True).values)
        cdf = probs.cumsum(1)
        return sample_rows(cdf / cdf[:, -1:], generator)
