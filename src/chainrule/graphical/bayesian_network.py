"""Bayesian networks over discrete variables: a DAG plus one conditional probability table a node.

CPD layout: the table of node X with parents (P_1, ..., P_k) is a float64 tensor of shape
(card P_1, ..., card P_k, card X); entry [p_1, ..., p_k, x] = P(X = x | P_1 = p_1, ...), so each
row over the last axis sums to 1. The parent order is the order in which the edges into X are
given. Data are integer codes (B, n) in the order the variables were given; -1 = missing.

Inference is exact variable elimination (see variable_elimination.py): each query keeps only the
ancestors of its targets and evidence (barren nodes sum to one), drops factors that the evidence
separates from the targets, and caches its plan by signature (targets, evidence variables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.dag import ancestor_masks, topological_order
from chainrule.graphical.parameters import bayesian_network_parameters, parameter_counts, parameter_table
from chainrule.graphical.tabular import (
    TabularModel,
    check_n,
    counts,
    normalised_cdf,
    sample_rows,
    smoothed,
)
from chainrule.graphical.variable_elimination import (
    Plan,
    Structure,
    build_plan,
    log_evidence,
    max_product,
    sum_product,
)

ROW_TOLERANCE = 1e-6
_PLAN_CACHE_SIZE = 4096
REPLAN_COST = 100_000.0  # ns: above this estimate, "auto" also tries a per-query min-fill order


def _short_list(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


class BayesianNetwork(TabularModel):
    """A discrete Bayesian network.

    Args:
        variables: name -> state names (a list of strings) or a cardinality (states "0".."k-1"),
            in the column order of the data.
        edges: (parent, child) pairs; a child's parents are ordered as their edges appear.
        cpds: name -> table shaped (parent cards..., own card), see the module docstring.
        name: the network's name (kept in BIF files).

    Attribute `elimination_order` selects how queries order their eliminations: "global" (the
    network's min-fill order, computed once, restricted to each query: no search per query),
    "min-fill" / "min-degree" (searched per query signature), or "auto" (the default: global,
    unless the plan's estimated cost exceeds REPLAN_COST, then the cheaper of global and a
    per-query min-fill order).
    """

    def __init__(
        self,
        variables: Mapping[str, Sequence[str] | int],
        edges: Iterable[tuple[str, str]],
        cpds: Mapping[str, torch.Tensor | Sequence],
        name: str = "unknown",
    ):
        self.name = str(name)
        self._init_variables(variables)
        self._init_edges(edges)
        self._init_cpds(cpds)

    # ----------------------------------------------------------------------------------- build
    def _init_variables(self, variables: Mapping[str, Sequence[str] | int]) -> None:
        if not isinstance(variables, Mapping) or not variables:
            raise ChainruleError("variables must be a non-empty mapping name -> state names or cardinality")
        self.names: list[str] = []
        self.state_names: dict[str, list[str]] = {}
        for name, spec in variables.items():
            if not isinstance(name, str) or not name:
                raise ChainruleError(f"variable names must be non-empty strings, got {name!r}")
            if isinstance(spec, bool):
                raise ChainruleError(
                    f"variable {name!r}: expected state names or a cardinality, got {spec!r}"
                )
            if isinstance(spec, int):
                if spec < 1:
                    raise ChainruleError(f"variable {name!r} has cardinality {spec}; it must be at least 1")
                states = [str(i) for i in range(spec)]
            elif isinstance(spec, Sequence) and not isinstance(spec, str):
                states = [str(s) for s in spec]
                if not states:
                    raise ChainruleError(f"variable {name!r} has no states")
                if len(set(states)) != len(states):
                    dup = sorted({s for s in states if states.count(s) > 1})
                    raise ChainruleError(f"variable {name!r} repeats state name(s) {dup}")
            else:
                raise ChainruleError(f"variable {name!r}: expected a list of state names or a cardinality")
            self.names.append(name)
            self.state_names[name] = states
        self.cardinalities: list[int] = [len(self.state_names[v]) for v in self.names]
        self._index = {v: i for i, v in enumerate(self.names)}
        self._state_index = [{s: j for j, s in enumerate(self.state_names[v])} for v in self.names]

    def _init_edges(self, edges: Iterable[tuple[str, str]]) -> None:
        n = len(self.names)
        parents: list[list[int]] = [[] for _ in range(n)]
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
        self._ancestors = ancestor_masks(self._parents, self._order)
        self._structure = Structure(self._scopes, self.cardinalities)
        self._plans: dict[tuple, Plan] = {}
        self.elimination_order = "auto"

    def _init_cpds(self, cpds: Mapping[str, torch.Tensor | Sequence]) -> None:
        if not isinstance(cpds, Mapping):
            raise ChainruleError("cpds must be a mapping variable name -> table")
        unknown = [str(k) for k in cpds if k not in self._index]
        if unknown:
            raise ChainruleError(
                f"cpds given for unknown variable(s) {unknown}; variables: {_short_list(self.names)}"
            )
        missing = [v for v in self.names if v not in cpds]
        if missing:
            raise ChainruleError(f"no CPD given for variable(s) {_short_list(missing)}")
        tables = []
        for i, v in enumerate(self.names):
            tables.append(self._check_cpd(i, cpds[v]))
        self._set_tables(tables)

    def _check_cpd(self, i: int, values: torch.Tensor | Sequence) -> torch.Tensor:
        name = self.names[i]
        try:
            t = torch.as_tensor(values, dtype=torch.float64).clone().contiguous()
        except (TypeError, ValueError, RuntimeError) as e:
            raise ChainruleError(f"CPD of {name!r} is not a numeric table: {e}") from None
        expected = tuple(self.cardinalities[j] for j in self._scopes[i])
        if tuple(t.shape) != expected:
            pnames = [self.names[p] for p in self._parents[i]]
            raise ChainruleError(
                f"CPD of {name!r} has shape {tuple(t.shape)}; expected {expected} ="
                f" (cardinalities of parents {pnames}..., cardinality of {name!r})"
            )
        if not torch.isfinite(t).all():
            raise ChainruleError(f"CPD of {name!r} contains NaN or infinite values")
        if (t < 0).any():
            raise ChainruleError(f"CPD of {name!r} has negative entries (minimum {t.min().item():.6g})")
        sums = t.sum(-1)
        bad = (sums - 1).abs() > ROW_TOLERANCE
        if bad.any():
            where = tuple(int(j) for j in bad.nonzero()[0]) if bad.dim() else ()
            given = ", ".join(
                f"{self.names[p]}={self.state_names[self.names[p]][s]}"
                for p, s in zip(self._parents[i], where)
            )
            row = f"given ({given})" if given else "(no parents)"
            raise ChainruleError(
                f"CPD of {name!r}: the row {row} sums to {float(sums[where]):.9g}, not 1"
                f" (tolerance {ROW_TOLERANCE:g}); {int(bad.sum())} bad row(s)"
            )
        return t

    def _set_tables(self, tables: list[torch.Tensor]) -> None:
        """Install CPDs and the derived tables (numpy views, flat logs, sampling CDFs)."""
        self._tables = tables
        self._np = [t.numpy() for t in tables]
        self._log_flat = [torch.log(t).reshape(-1) for t in tables]
        self._cdf = [normalised_cdf(t.reshape(-1, t.shape[-1])) for t in tables]
        self._strides = []
        for scope in self._scopes:
            cards = [self.cardinalities[j] for j in scope]
            strides = [math.prod(cards[k + 1 :]) for k in range(len(cards))]
            self._strides.append(torch.tensor(strides, dtype=torch.long))

    # ------------------------------------------------------------------------------- structure
    def _node(self, name: str, what: str = "query") -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ChainruleError(
                f"unknown variable {name!r} in {what}; variables: {_short_list(self.names)}"
            ) from None

    def parents(self, name: str) -> list[str]:
        """Parents of `name`, in the order of the CPD's leading axes."""
        return [self.names[p] for p in self._parents[self._node(name)]]

    def children(self, name: str) -> list[str]:
        """Children of `name`, in variable order."""
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
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P(x) per row in nats; entries -1 are missing and summed out (exactly)."""
        x = self.check_data(x, allow_missing=True, what="x")
        missing = x < 0
        incomplete = missing.any(1)
        if not incomplete.any():
            return self._log_prob_complete(x)
        out = torch.empty(x.shape[0], dtype=torch.float64)
        complete = ~incomplete
        if complete.any():
            out[complete] = self._log_prob_complete(x[complete])
        rows = incomplete.nonzero().squeeze(1)
        patterns, inverse = torch.unique(missing[rows], dim=0, return_inverse=True)
        for k in range(patterns.shape[0]):
            sel = rows[inverse == k]
            observed = tuple(j for j in range(len(self.names)) if not patterns[k, j])
            if not observed:
                out[sel] = 0.0
                continue
            plan = self._plan((), observed, likelihood=True)
            evidence = {j: x[sel, j].numpy() for j in observed}
            out[sel] = torch.from_numpy(log_evidence(self._np, plan, evidence, len(sel)))
        return out

    def _log_prob_complete(self, x: torch.Tensor) -> torch.Tensor:
        lp = torch.zeros(x.shape[0], dtype=torch.float64)
        for i, scope in enumerate(self._scopes):
            flat = x[:, list(scope)] @ self._strides[i] if len(scope) > 1 else x[:, i]
            lp += self._log_flat[i][flat]
        return lp

    # -------------------------------------------------------------------------------- sampling
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sampling: each variable drawn from its CPD row given its sampled parents."""
        n = check_n(n)
        x = torch.zeros(n, len(self.names), dtype=torch.long)
        for i in self._order:
            ps = self._parents[i]
            cdf = self._cdf[i]
            if ps:
                rows = x[:, list(ps)] @ self._strides[i][:-1] // self.cardinalities[i]
                cdf = cdf[rows]
            else:
                cdf = cdf.expand(n, -1)
            x[:, i] = sample_rows(cdf, generator)
        return x

    # ---------------------------------------------------------------------------------- fitting
    def fit(self, data: torch.Tensor, alpha: float = 1.0) -> BayesianNetwork:
        """Re-estimate every CPD by counting in complete data (structure kept); returns self.

        alpha = 0 is maximum likelihood (parent configurations never seen get a uniform row);
        alpha > 0 adds alpha pseudo-counts to every cell (Laplace for alpha = 1).
        """
        x = self.check_data(data, allow_missing=False, what="data")
        tables = []
        for scope in self._scopes:
            cards = [self.cardinalities[j] for j in scope]
            tables.append(smoothed(counts(x[:, list(scope)], cards), float(alpha)).contiguous())
        self._set_tables(tables)
        return self

    # -------------------------------------------------------------------------------- inference
    def _resolve_targets(self, targets: str | Sequence[str]) -> tuple[int, ...]:
        if isinstance(targets, str):
            targets = [targets]
        idx = tuple(self._node(t, "targets") for t in targets)
        if not idx:
            raise ChainruleError("a query needs at least one target variable")
        if len(set(idx)) != len(idx):
            raise ChainruleError(f"targets repeat a variable: {list(targets)}")
        return idx

    def _resolve_evidence(self, evidence: Mapping[str, str | int] | None) -> dict[int, int]:
        if not evidence:
            return {}
        if not isinstance(evidence, Mapping):
            raise ChainruleError("evidence must be a mapping variable name -> state (name or index)")
        out = {}
        for name, state in evidence.items():
            i = self._node(name, "evidence")
            if isinstance(state, str):
                j = self._state_index[i].get(state)
                if j is None:
                    raise ChainruleError(
                        f"unknown state {state!r} for variable {name!r} in evidence;"
                        f" states: {', '.join(self.state_names[name])}"
                    )
            elif isinstance(state, (int, np.integer)) and not isinstance(state, bool):
                j = int(state)
                if not 0 <= j < self.cardinalities[i]:
                    raise ChainruleError(
                        f"state index {j} for variable {name!r} in evidence is out of range"
                        f" 0..{self.cardinalities[i] - 1}"
                    )
            else:
                raise ChainruleError(f"evidence for {name!r} must be a state name or index, got {state!r}")
            out[i] = j
        return out

    def _plan(
        self, targets: tuple[int, ...], evidence_vars: tuple[int, ...], likelihood: bool = False
    ) -> Plan:
        key = (targets, evidence_vars, likelihood, self.elimination_order)
        plan = self._plans.get(key)
        if plan is None:
            mask = 0
            for v in targets:
                mask |= self._ancestors[v]
            for v in evidence_vars:
                mask |= self._ancestors[v]
            nodes = [i for i in self._order if mask >> i & 1]
            mode = self.elimination_order
            plan = build_plan(
                self._structure,
                nodes,
                targets,
                evidence_vars,
                drop_separated=not likelihood,
                order="global" if mode == "auto" else mode,
            )
            if mode == "auto" and plan.cost > REPLAN_COST:
                alternative = build_plan(
                    self._structure,
                    nodes,
                    targets,
                    evidence_vars,
                    drop_separated=not likelihood,
                    order="min-fill",
                )
                if alternative.cost < plan.cost:
                    plan = alternative
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def query_plan(self, targets: str | Sequence[str], evidence: Iterable[str] = ()) -> Plan:
        """The (cached) elimination plan of a query signature: its factors, order, einsum steps and
        estimated cost. `evidence` names the observed variables (a mapping's keys also do)."""
        t = self._resolve_targets(targets)
        ev = tuple(sorted(self._node(v, "evidence") for v in evidence))
        return self._plan(t, ev)

    def clear_plan_cache(self) -> None:
        """Forget the cached elimination plans (they depend on structure only, never on CPDs)."""
        self._plans.clear()

    def query(
        self, targets: str | Sequence[str], evidence: Mapping[str, str | int] | None = None
    ) -> torch.Tensor:
        """P(targets | evidence) as a float64 tensor with one axis per target, in the given order.

        Evidence maps variable names to state names (or state indices). Without evidence this is
        the marginal P(targets). Raises ChainruleError if the evidence has probability zero in
        the part of the network that the targets depend on; evidence impossible only in a part
        that the evidence itself separates from the targets is pruned unseen (as in pgmpy) -
        `log_prob(encode(evidence))` gives log P(evidence) when that matters.
        """
        t = self._resolve_targets(targets)
        ev = self._resolve_evidence(evidence)
        if ev:
            both = [self.names[i] for i in t if i in ev]
            if both:
                raise ChainruleError(f"variable(s) {both} are both targets and evidence")
        plan = self._plan(t, tuple(sorted(ev)))
        joint = sum_product(self._np, plan, ev)
        z = joint.sum()
        if not z > 0:
            shown = {self.names[i]: self.state_names[self.names[i]][j] for i, j in ev.items()}
            raise ChainruleError(f"the evidence {shown} has probability zero under this network")
        return torch.from_numpy(joint / z)

    def marginal(self, targets: str | Sequence[str]) -> torch.Tensor:
        """P(targets), the same as query(targets) without evidence."""
        return self.query(targets)

    def mpe(self, evidence: Mapping[str, str | int] | None = None) -> tuple[dict[str, str], float]:
        """Most probable explanation: the complete assignment maximising P(x, evidence), found by
        max-product variable elimination; returns (variable -> state name, log P of it)."""
        ev = self._resolve_evidence(evidence)
        key = ("mpe", tuple(sorted(ev)), self.elimination_order)
        plan = self._plans.get(key)
        if plan is None:
            plan = build_plan(
                self._structure,
                self._order,
                (),
                tuple(sorted(ev)),
                drop_separated=False,
                fuse=False,
                order="global" if self.elimination_order == "auto" else self.elimination_order,
            )
            self._plans[key] = plan
        assignment, logp = max_product(self._np, plan, ev)
        if logp == -math.inf:
            shown = {self.names[i]: self.state_names[self.names[i]][j] for i, j in ev.items()}
            raise ChainruleError(f"the evidence {shown} has probability zero under this network")
        assignment.update(ev)
        states = {v: self.state_names[v][assignment[i]] for i, v in enumerate(self.names)}
        return states, logp

    def encode(self, assignment: Mapping[str, str]) -> torch.Tensor:
        """Integer codes (1, n) of a name -> state-name mapping; absent variables are -1 (missing)."""
        row = [-1] * len(self.names)
        for i, state in self._resolve_evidence(assignment).items():
            row[i] = state
        return torch.tensor([row], dtype=torch.long)

    def states_of(self, codes: torch.Tensor) -> list[dict[str, str]]:
        """Rows of integer codes as name -> state-name dicts (missing entries left out)."""
        codes = self.check_data(codes, allow_missing=True, what="codes")
        return [
            {v: self.state_names[v][int(c)] for v, c in zip(self.names, row) if c >= 0}
            for row in codes.tolist()
        ]
