"""The records of an elimination plan: reduced factors, einsum steps, the plan itself, and the
cost model that decides step fusion (see plan.py)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from chainrule.errors import ChainruleError

MAX_LABELS = 52  # numpy's einsum takes at most 52 distinct sub-script labels per call
CALL_COST = 2500.0  # ns per einsum call (measured, numpy 2, one thread)
CELL_COST = 3.5  # ns per cell of the joint loop per operand
MAX_FUSED_CELLS = 1 << 16
MAX_OPERANDS = 16  # operands of one einsum call (numpy's limit is 64 arguments in all)
PAIR_CANDIDATES = 24  # the pairwise search considers pairs among this many smallest operands
MAX_STEP_CELLS = 10**8  # cells of one step's loop (its largest intermediate), see check_step_size


class Factor(NamedTuple):
    """The table of `node` restricted to evidence: axes `evidence_axes` are indexed by evidence."""

    node: int
    evidence_axes: tuple[tuple[int, int], ...]  # (axis, variable)
    free_scope: tuple[int, ...]


class Step(NamedTuple):
    """One einsum: multiply the `operands` (slot, sub-script) pairs into `out_sub`, summing the
    other labels. `in_vars` / `out_vars` / `summed` hold the same axes as labels (see Plan)."""

    operands: tuple[tuple[int, tuple[int, ...]], ...]
    in_vars: tuple[tuple[int, ...], ...]
    out_vars: tuple[int, ...]
    summed: tuple[int, ...]
    out_sub: tuple[int, ...]
    sum_sub: tuple[int, ...]  # sub-script labels of `summed`

    @property
    def inputs(self) -> tuple[int, ...]:
        return tuple(slot for slot, _ in self.operands)


@dataclass
class Plan:
    """Slots 0..len(factors)-1 hold the reduced factors; step k writes slot len(factors) + k.

    Step axes are named by labels: label r is variable `variables[r]` (labels are positions in
    the elimination order, which makes "the next variable to eliminate" a lowest set bit).
    """

    factors: list[Factor]
    steps: list[Step]
    targets: tuple[int, ...]
    variables: Sequence[int]
    order: list[int] = field(default_factory=list)
    constants: list[int] = field(default_factory=list)  # slots that hold scalars
    cost: float = 0.0  # estimated nanoseconds of the einsum calls (CALL_COST, CELL_COST)

    def max_factor_size(self, cards: Sequence[int]) -> int:
        """Cells of the largest joint loop of any step (the cost that the order controls)."""
        size = 1
        for s in self.steps:
            n = 1
            for r in set(s.out_vars).union(*s.in_vars):
                n *= cards[self.variables[r]]
            size = max(size, n)
        return size


def max_step_cells() -> int:
    """The limit on one elimination step: MAX_STEP_CELLS, or CHAINRULE_MAX_STEP_CELLS."""
    env = os.environ.get("CHAINRULE_MAX_STEP_CELLS")
    if not env:
        return MAX_STEP_CELLS
    try:
        return int(env)
    except ValueError:
        raise ChainruleError(f"CHAINRULE_MAX_STEP_CELLS must be an integer, got {env!r}") from None


def check_step_size(plan: Plan, cards: Sequence[int]) -> None:
    """Refuse a plan whose largest step would loop over more cells than `max_step_cells()`,
    naming the induced width (variables of that step, less one) and its size."""
    limit = max_step_cells()
    worst, width = 1, 0
    for s in plan.steps:
        scope = set(s.out_vars).union(*s.in_vars)
        n = math.prod(cards[plan.variables[r]] for r in scope)
        if n > worst:
            worst, width = n, len(scope) - 1
    if worst > limit:
        raise ChainruleError(
            f"variable elimination for this query has induced width {width}: one step would hold"
            f" {worst:,} cells, over the limit of {limit:,} (set CHAINRULE_MAX_STEP_CELLS to raise it)"
        )


def check_labels(count: int) -> None:
    """Refuse a step that would loop over more variables than einsum has labels."""
    if count > MAX_LABELS:
        raise ChainruleError(
            f"variable elimination would loop over {count} variables at once; too large to compute"
        )
