"""Bayesian networks over discrete variables: a DAG plus one conditional probability table a node.

CPD layout: the table of node X with parents (P_1, ..., P_k) is a float64 tensor of shape
(card P_1, ..., card P_k, card X); entry [p_1, ..., p_k, x] = P(X = x | P_1 = p_1, ...), so each
row over the last axis sums to 1. The parent order is the order in which the edges into X are
given. Data are integer codes (B, n) in the order the variables were given; -1 = missing.

The network is a contract `Model` ("bayesian-network"): `log_prob` sums missing entries out
exactly, `sample` draws ancestrally or completes `given` exactly (bn_sampling.py), queries run
variable elimination (bn_queries.py). CPDs are buffers `cpd_0`, `cpd_1`, ... (variable order), so
`chainrule.persistence.save/load` round-trips them; BIF files are the interchange format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bn_queries import REPLAN_COST, QueryMixin
from chainrule.graphical.bn_sampling import SamplingMixin
from chainrule.graphical.bn_tables import (
    ROW_TOLERANCE,
    VariableSpec,
    check_cpd,
    check_table_size,
    default_table,
    parse_variables,
    seeded,
    short_list,
)
from chainrule.graphical.dag import ancestor_masks, topological_order
from chainrule.graphical.parameters import bayesian_network_parameters, parameter_counts, parameter_table
from chainrule.graphical.tabular import TabularModel, counts, normalised_cdf, smoothed
from chainrule.graphical.variable_elimination import Plan, Structure, log_evidence
from chainrule.models.base import register_model

BATCH_CELLS = 1 << 24  # log_prob with missing values: rows x step cells held at once

__all__ = ["REPLAN_COST", "ROW_TOLERANCE", "BayesianNetwork"]


@register_model("bayesian-network")
class BayesianNetwork(QueryMixin, SamplingMixin, TabularModel):
    """A discrete Bayesian network.

    Args:
        variables: name -> state names (a list of strings) or a cardinality (states "0".."k-1"),
            in the column order of the data (or a list of (name, states) pairs).
        edges: (parent, child) pairs; a child's parents are ordered as their edges appear.
        cpds: name -> table shaped (parent cards..., own card), see the module docstring. None:
            uniform tables, or random valid ones drawn with `seed`.
        name: the network's name (kept in BIF files).
        seed: with `cpds=None`, draw each CPD row from a flat Dirichlet with this seed.
        network_name: the same as `name` (what config.json records: `build_model` takes the
            registry name as its own `name` argument).

    Attribute `elimination_order` selects how queries order their eliminations: "global" (the
    network's min-fill order, computed once, restricted to each query: no search per query),
    "min-fill" / "min-degree" (searched per query signature), or "auto" (the default: global,
    unless the plan's estimated cost exceeds REPLAN_COST, then the cheaper of global and a
    per-query min-fill order).
    """

    directed_graph = True

    def __init__(
        self,
        variables: VariableSpec,
        edges: Iterable[tuple[str, str]] = (),
        cpds: Mapping[str, torch.Tensor | Sequence] | None = None,
        name: str = "unknown",
        seed: int | None = None,
        *,
        network_name: str | None = None,
    ):
        super().__init__()
        self.name = str(name if network_name is None else network_name)
        self._init_variables(variables)
        self._init_edges(edges)
        self._init_cpds(cpds, seeded(seed))
        self.remember_config(
            {
                "variables": [[v, list(self.state_names[v])] for v in self.names],
                "edges": [list(e) for e in self.edges],
                "network_name": self.name,
            }
        )
        self.register_load_state_dict_post_hook(lambda module, _keys: module._refresh())

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """A 4-variable network (a v-structure and a chain) with random valid CPDs (seed 0)."""
        return {
            "variables": [["a", 2], ["b", 3], ["c", 2], ["d", 3]],
            "edges": [["a", "c"], ["b", "c"], ["c", "d"]],
            "seed": 0,
        }

    # ----------------------------------------------------------------------------------- build
    def _init_variables(self, variables: VariableSpec) -> None:
        self.names, self.state_names = parse_variables(variables)
        self.cardinalities: list[int] = [len(self.state_names[v]) for v in self.names]
        self._declare(self.cardinalities)
        self._index = {v: i for i, v in enumerate(self.names)}
        self._state_index = [{s: j for j, s in enumerate(self.state_names[v])} for v in self.names]

    def _init_edges(self, edges: Iterable[tuple[str, str]]) -> None:
        parents: list[list[int]] = [[] for _ in self.names]
        for e in edges:
            if not isinstance(e, (tuple, list)) or len(e) != 2:
                raise ChainruleError(f"an edge must be a (parent, child) pair, got {e!r}")
            p, c = (self._node(v, "edge") for v in e)
            if p == c:
                raise ChainruleError(f"the graph has a directed cycle: {e[0]} -> {e[0]} (self-loop)")
            if p in parents[c]:
                raise ChainruleError(f"edge {e[0]} -> {e[1]} is given twice")
            parents[c].append(p)
        self._order = topological_order(parents, self.names)
        self._parents: list[tuple[int, ...]] = [tuple(ps) for ps in parents]
        self._scopes: list[tuple[int, ...]] = [(*ps, i) for i, ps in enumerate(self._parents)]
        for i, ps in enumerate(self._parents):
            cards = [self.cardinalities[j] for j in (*ps, i)]
            check_table_size(self.names[i], [self.names[p] for p in ps], cards)
        self._ancestors = ancestor_masks(self._parents, self._order)
        self._structure = Structure(self._scopes, self.cardinalities)
        self._plans: dict[tuple, Plan] = {}
        self.elimination_order = "auto"

    def _init_cpds(
        self, cpds: Mapping[str, torch.Tensor | Sequence] | None, generator: torch.Generator | None
    ) -> None:
        if cpds is None:
            shapes = [tuple(self.cardinalities[j] for j in s) for s in self._scopes]
            self._set_tables([default_table(shape, generator) for shape in shapes])
            return
        if not isinstance(cpds, Mapping):
            raise ChainruleError("cpds must be a mapping variable name -> table")
        unknown = [str(k) for k in cpds if k not in self._index]
        if unknown:
            raise ChainruleError(
                f"cpds given for unknown variable(s) {unknown}; variables: {short_list(self.names)}"
            )
        missing = [v for v in self.names if v not in cpds]
        if missing:
            raise ChainruleError(f"no CPD given for variable(s) {short_list(missing)}")
        self._set_tables([self._check_cpd(i, cpds[v]) for i, v in enumerate(self.names)])

    def _check_cpd(self, i: int, values: torch.Tensor | Sequence) -> torch.Tensor:
        pnames = [self.names[p] for p in self._parents[i]]
        expected = tuple(self.cardinalities[j] for j in self._scopes[i])
        return check_cpd(values, self.names[i], expected, pnames, [self.state_names[p] for p in pnames])

    def _set_tables(self, tables: list[torch.Tensor]) -> None:
        """Install CPDs as buffers `cpd_<i>` and derive the CPU tables that inference reads."""
        for i, t in enumerate(tables):
            if f"cpd_{i}" in self._buffers:
                self._buffers[f"cpd_{i}"] = t.to(self._device())
            else:
                self.register_buffer(f"cpd_{i}", t)
        self._strides = []
        for scope in self._scopes:
            cards = [self.cardinalities[j] for j in scope]
            strides = [math.prod(cards[k + 1 :]) for k in range(len(cards))]
            self._strides.append(torch.tensor(strides, dtype=torch.long))
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the derived tables (CPU float64, numpy views, flat logs, sampling CDFs) from
        the buffers: after construction, `fit`, `load_state_dict` and moves between devices."""
        self._tables = [
            self._buffers[f"cpd_{i}"].detach().to("cpu", torch.float64) for i in range(len(self.names))
        ]
        self._np = [t.numpy() for t in self._tables]
        self._log_flat = [torch.log(t).reshape(-1) for t in self._tables]
        self._cdf = [normalised_cdf(t.reshape(-1, t.shape[-1])) for t in self._tables]

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - nn.Module's signature
        out = super()._apply(fn, *args, **kwargs)
        self._refresh()
        return out

    # ------------------------------------------------------------------------------- structure
    def _node(self, name: str, what: str = "query") -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ChainruleError(
                f"unknown variable {name!r} in {what}; variables: {short_list(self.names)}"
            ) from None

    def parents(self, name: str) -> list[str]:
        """Parents of `name`, in the order of the CPD's leading axes."""
        return [self.names[p] for p in self._parents[self._node(name)]]

    def children(self, name: str | None = None):  # noqa: ANN201 - two meanings, see below
        """Children of `name`, in variable order. Without a name: nn.Module's (empty) iterator of
        sub-modules, which torch itself calls."""
        if name is None:
            return super().children()
        i = self._node(name)
        return [v for j, v in enumerate(self.names) if i in self._parents[j]]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs, grouped by child in variable order, parents in CPD order."""
        return [(self.names[p], v) for v, ps in zip(self.names, self._parents) for p in ps]

    def topological_order(self) -> list[str]:
        """The variables ordered so that every parent comes before its children (sampling order)."""
        return [self.names[i] for i in self._order]

    def cpd(self, name: str) -> torch.Tensor:
        """A copy of the CPD of `name`, shaped (parent cards..., own card)."""
        return self._tables[self._node(name)].clone()

    def cpds(self) -> dict[str, torch.Tensor]:
        """Copies of every CPD, by variable name (see `cpd`)."""
        return {v: t.clone() for v, t in zip(self.names, self._tables)}

    def num_parameters(self) -> int:
        """Free parameters: sum over nodes of (card - 1) x product of parent cardinalities."""
        return bayesian_network_parameters(self.cardinalities, self._parents)

    def parameter_counts(self) -> dict[str, int]:
        """This network's free parameters next to full-joint, independent and Markov-chain models."""
        return parameter_counts(self)

    def parameter_table(self) -> str:
        """`parameter_counts` as a plain-text table, each count relative to the network's."""
        return parameter_table(self)

    def identical(self, other: BayesianNetwork) -> bool:
        """Same variables (in order), states, parents (in order) and bit-identical CPD values."""
        return (
            isinstance(other, BayesianNetwork)
            and self.names == other.names
            and self.state_names == other.state_names
            and self._parents == other._parents
            and all(torch.equal(a, b) for a, b in zip(self._tables, other._tables))
        )

    def __repr__(self) -> str:
        return (
            f"BayesianNetwork({self.name!r}: {len(self.names)} variables, {len(self.edges)} edges,"
            f" {self.num_parameters()} free parameters)"
        )

    # ------------------------------------------------------------------------------ likelihood
    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log P(x) per row in nats (float64, on the tables' device); x holds integer (or
        integral float) codes on any device; entries -1 are missing and summed out exactly."""
        self.check_cond(cond)
        x = self.check_data(x.cpu() if isinstance(x, torch.Tensor) else x, allow_missing=True, what="x")
        missing = x < 0
        incomplete = missing.any(1)
        if not incomplete.any():
            return self._log_prob_complete(x).to(self._device())
        out = torch.empty(x.shape[0], dtype=torch.float64)
        complete = ~incomplete
        if complete.any():
            out[complete] = self._log_prob_complete(x[complete])
        rows = incomplete.nonzero().squeeze(1)
        patterns, inverse = torch.unique(missing[rows], dim=0, return_inverse=True)
        for k in range(patterns.shape[0]):
            sel = rows[inverse == k]
            observed = tuple(j for j in range(len(self.names)) if not patterns[k, j])
            out[sel] = torch.from_numpy(
                self._log_evidence(observed, {j: x[sel, j].numpy() for j in observed})
            )
        return out.to(self._device())

    def _log_evidence(self, observed: tuple[int, ...], values: Mapping[int, Any]) -> Any:
        """log P(x_observed) for a batch of values (numpy arrays by variable), by elimination."""
        batch = len(next(iter(values.values()))) if values else 1
        if not observed:
            return torch.zeros(batch, dtype=torch.float64).numpy()
        plan = self._plan((), observed, likelihood=True)
        step = max(1, BATCH_CELLS // plan.max_factor_size(self.cardinalities))
        if batch <= step:
            return log_evidence(self._np, plan, values, batch)
        parts = []
        for a in range(0, batch, step):  # bounded memory: every step carries a batch axis
            chunk = {j: v[a : a + step] for j, v in values.items()}
            parts.append(log_evidence(self._np, plan, chunk, len(next(iter(chunk.values())))))
        return np.concatenate(parts)

    def _log_prob_complete(self, x: torch.Tensor) -> torch.Tensor:
        lp = torch.zeros(x.shape[0], dtype=torch.float64)
        for i, scope in enumerate(self._scopes):
            flat = x[:, list(scope)] @ self._strides[i] if len(scope) > 1 else x[:, i]
            lp += self._log_flat[i][flat]
        return lp

    # ---------------------------------------------------------------------------------- fitting
    def fit(self, data: torch.Tensor, alpha: float = 1.0) -> BayesianNetwork:
        """Re-estimate every CPD by counting in complete data (structure kept); returns self.

        alpha = 0 is maximum likelihood (parent configurations never seen get a uniform row);
        alpha > 0 adds alpha pseudo-counts to every cell (Laplace for alpha = 1).
        """
        x = self.check_data(data.cpu() if isinstance(data, torch.Tensor) else data, what="data")
        tables = []
        for scope in self._scopes:
            cards = [self.cardinalities[j] for j in scope]
            tables.append(smoothed(counts(x[:, list(scope)], cards), float(alpha)).contiguous())
        self._set_tables(tables)
        return self
