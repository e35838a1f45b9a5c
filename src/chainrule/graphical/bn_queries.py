"""Queries on a Bayesian network: P(targets | evidence), marginals, the most probable explanation.

Each query keeps only the ancestors of its targets and evidence (barren nodes sum to one), drops
factors that the evidence separates from the targets, and caches its elimination plan by
signature (targets, evidence variables); the plans depend on structure only, never on CPDs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bn_tables import max_table_cells
from chainrule.graphical.plan_records import check_step_size
from chainrule.graphical.variable_elimination import Plan, build_plan, max_product, sum_product

PLAN_CACHE_SIZE = 4096
REPLAN_COST = 100_000.0  # ns: above this estimate, "auto" also tries a per-query min-fill order


class QueryMixin:
    """Exact inference for BayesianNetwork (which supplies names, states, structure and tables)."""

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
            args = (self._structure, nodes, targets, evidence_vars)
            plan = build_plan(
                *args, drop_separated=not likelihood, order="global" if mode == "auto" else mode
            )
            if mode == "auto" and plan.cost > REPLAN_COST:
                alternative = build_plan(*args, drop_separated=not likelihood, order="min-fill")
                if alternative.cost < plan.cost:
                    plan = alternative
            check_step_size(plan, self.cardinalities)
            if len(self._plans) >= PLAN_CACHE_SIZE:
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

    def _zero_evidence(self, ev: Mapping[int, int]) -> ChainruleError:
        shown = {self.names[i]: self.state_names[self.names[i]][j] for i, j in ev.items()}
        return ChainruleError(f"the evidence {shown} has probability zero under this network")

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
        size = math.prod(self.cardinalities[i] for i in t)
        if size > max_table_cells():
            raise ChainruleError(
                f"the joint table of {len(t)} target variables would hold {size:,} cells, over the"
                f" limit of {max_table_cells():,}: ask for fewer targets (or set CHAINRULE_MAX_TABLE_CELLS)"
            )
        plan = self._plan(t, tuple(sorted(ev)))
        joint = sum_product(self._np, plan, ev)
        z = joint.sum()
        if not z > 0:
            raise self._zero_evidence(ev)
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
            mode = self.elimination_order
            plan = build_plan(
                self._structure,
                self._order,
                (),
                tuple(sorted(ev)),
                drop_separated=False,
                fuse=False,
                order="global" if mode == "auto" else mode,
            )
            check_step_size(plan, self.cardinalities)
            self._plans[key] = plan
        assignment, logp = max_product(self._np, plan, ev)
        if logp == -math.inf:
            raise self._zero_evidence(ev)
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
