"""Decomposable structure scores of discrete Bayesian networks: BIC, BDeu, K2 and plain log-likelihood.

A decomposable score is a sum over nodes of a *family score* that depends only on a node and its
parent set, computed from the counts N_jk (parent configuration j, own state k) in the data:

- "ll":   sum_jk N_jk log(N_jk / N_j), the maximised log-likelihood (always prefers more parents);
- "bic":  ll - (log N / 2) * q * (r - 1), the log-likelihood less half log N per free parameter
          (q parent configurations, r states): the large-sample approximation of the marginal
          likelihood, consistent as N grows;
- "bdeu": log marginal likelihood under Dirichlet priors with an equivalent sample size ess
          spread uniformly (alpha_jk = ess / (q r)): score-equivalent (Markov-equivalent DAGs score
          the same);
- "k2":   log marginal likelihood under flat Dirichlet(1, ..., 1) priors (Cooper & Herskovits).

Because the total is a sum of family scores, a local search move (add, remove or reverse one
edge) changes one or two terms; `FamilyScores` caches every family it has scored, so a search
pays for each (node, parent set) once. Scores are in nats, higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from chainrule.errors import ChainruleError

#: The scores `FamilyScores` knows, by name.
SCORES = ("bic", "bdeu", "k2", "ll")

#: Tables with more cells than this are counted over the observed cells only (torch.unique).
_DENSE_CELLS = 1 << 22


class FamilyScores:
    """Family scores of one data set under one score, cached by (node, parent set).

    Args:
        data: integer codes (B, n), column j in 0..cardinalities[j]-1 (no missing values).
        cardinalities: number of states of each column.
        score: one of SCORES ("bic" by default).
        equivalent_sample_size: BDeu's prior strength (ignored by the other scores).
    """

    def __init__(
        self,
        data: torch.Tensor,
        cardinalities: Sequence[int],
        score: str = "bic",
        equivalent_sample_size: float = 10.0,
    ):
        if score not in SCORES:
            raise ChainruleError(f"unknown structure score {score!r}; choose one of {', '.join(SCORES)}")
        if not (equivalent_sample_size > 0 and math.isfinite(equivalent_sample_size)):
            raise ChainruleError(f"equivalent_sample_size must be > 0, got {equivalent_sample_size}")
        x = torch.as_tensor(data)
        if x.dim() != 2 or x.shape[1] != len(cardinalities):
            raise ChainruleError(
                f"data must be (rows, {len(cardinalities)}) integer codes, got shape {tuple(x.shape)}"
            )
        if x.shape[0] < 1:
            raise ChainruleError("structure scores need at least one row of data")
        self.columns = x.long().t().contiguous()  # (n, B): one contiguous row per variable
        self.cardinalities = [int(c) for c in cardinalities]
        self.score = score
        self.equivalent_sample_size = float(equivalent_sample_size)
        self.num_rows = int(x.shape[0])
        self._cache: dict[tuple[int, tuple[int, ...]], float] = {}

    @property
    def num_variables(self) -> int:
        return len(self.cardinalities)

    @property
    def evaluations(self) -> int:
        """How many distinct families have been scored (the cost of a search)."""
        return len(self._cache)

    def __call__(self, child: int, parents: Iterable[int]) -> float:
        """The family score of `child` with parent set `parents` (order does not matter)."""
        key = (child, tuple(sorted(parents)))
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = self._family(child, key[1])
        return value

    def total(self, parents: Sequence[Iterable[int]]) -> float:
        """The score of a whole DAG given as each node's parents: the sum of its family scores."""
        if len(parents) != self.num_variables:
            raise ChainruleError(f"expected the parents of {self.num_variables} nodes, got {len(parents)}")
        return sum(self(i, ps) for i, ps in enumerate(parents))

    def counts(self, child: int, parents: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(N_jk of the observed cells, N_j of the observed parent configurations, q), float64."""
        r = self.cardinalities[child]
        q = math.prod(self.cardinalities[p] for p in parents)
        key = torch.zeros(self.num_rows, dtype=torch.long)
        for p in parents:
            key = key * self.cardinalities[p] + self.columns[p]
        cell = key * r + self.columns[child]
        if q * r <= _DENSE_CELLS:
            table = torch.bincount(cell, minlength=q * r).reshape(q, r).double()
            njk, nj = table[table > 0], table.sum(1)
            return njk, nj[nj > 0], q
        _, njk = torch.unique(cell, return_counts=True)
        _, nj = torch.unique(key, return_counts=True)
        return njk.double(), nj.double(), q

    def _family(self, child: int, parents: tuple[int, ...]) -> float:
        njk, nj, q = self.counts(child, parents)
        r = self.cardinalities[child]
        if self.score in ("ll", "bic"):
            ll = float((njk * njk.log()).sum() - (nj * nj.log()).sum())
            if self.score == "ll":
                return ll
            return ll - 0.5 * math.log(self.num_rows) * q * (r - 1)
        if self.score == "k2":
            a_jk, a_j = 1.0, float(r)
        else:  # bdeu
            a_j = self.equivalent_sample_size / q
            a_jk = a_j / r
        # Unobserved cells and parent configurations contribute lgamma(a) - lgamma(a) = 0.
        cells = float((torch.lgamma(njk + a_jk) - math.lgamma(a_jk)).sum())
        rows = float((math.lgamma(a_j) - torch.lgamma(nj + a_j)).sum())
        return cells + rows


def structure_score(
    data: torch.Tensor,
    cardinalities: Sequence[int],
    parents: Sequence[Iterable[int]],
    score: str = "bic",
    equivalent_sample_size: float = 10.0,
) -> float:
    """The score (nats, higher is better) of the DAG given as each node's parent indices."""
    return FamilyScores(data, cardinalities, score, equivalent_sample_size).total(parents)
