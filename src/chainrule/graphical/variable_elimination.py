"""Exact inference by variable elimination: a plan (which factors, which order) then einsum calls.

A query is answered in two phases. `build_plan` (plan.py) works on structure only: which factors,
which order, the einsum sub-scripts of every step. `sum_product` / `log_evidence` /
`max_product` here then only index the tables by the evidence values and call einsum once per
step. Plans depend on the query's signature (targets, evidence variables), not on evidence
values, so callers cache them.

The einsum is numpy's C routine: on the small factors of a Bayesian network query the cost is
per-call overhead, about 2 us for it (4 us through np.einsum's Python wrapper) against 20-170 us
for torch.einsum (which routes three or more operands through opt_einsum's path search). Tables
are torch tensors everywhere else; the numpy arrays are views sharing their memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.graphical.plan import Structure, build_plan
from chainrule.graphical.plan_records import MAX_LABELS, Factor, Plan, Step

__all__ = ["Factor", "Plan", "Step", "Structure", "build_plan", "log_evidence", "max_product", "sum_product"]

try:  # numpy's C einsum without the Python wrapper (dispatch, `optimize` handling): half the cost
    from numpy._core.multiarray import c_einsum as _einsum
except ImportError:  # pragma: no cover - numpy < 2 or a future layout
    try:
        from numpy.core.multiarray import c_einsum as _einsum
    except ImportError:
        _einsum = np.einsum


def _reduce(tables: Sequence[np.ndarray], plan: Plan, evidence: Mapping[int, int]) -> list[np.ndarray]:
    slots = []
    for f in plan.factors:
        t = tables[f.node]
        if f.evidence_axes:
            idx: list = [slice(None)] * t.ndim
            for axis, var in f.evidence_axes:
                idx[axis] = evidence[var]
            t = t[tuple(idx)]
        slots.append(t)
    return slots


def sum_product(tables: Sequence[np.ndarray], plan: Plan, evidence: Mapping[int, int]) -> np.ndarray:
    """Unnormalised P(targets, evidence), up to the factors the plan dropped; axes in target order."""
    slots = _reduce(tables, plan, evidence)
    for step in plan.steps:
        args: list = []
        for slot, sub in step.operands:
            args.append(slots[slot])
            args.append(sub)
        args.append(step.out_sub)
        slots.append(_einsum(*args))
    return slots[-1]


def max_product(
    tables: Sequence[np.ndarray], plan: Plan, evidence: Mapping[int, int]
) -> tuple[dict[int, int], float]:
    """Most probable assignment (variable -> state) of the eliminated variables, and the log of
    its joint probability with the evidence.

    The plan must have no targets and no fused steps. Each step multiplies its factors over the
    union scope, then takes max and argmax over its variable (if it has one: a large bucket's
    pairwise products have none); the argmax tables are read back in
    reverse order.
    """
    slots = _reduce(tables, plan, evidence)
    back: list[tuple[int, tuple[int, ...], np.ndarray]] = []
    with np.errstate(divide="ignore"):
        for step in plan.steps:
            if len(step.summed) > 1:
                raise ChainruleError("max-product needs a plan with one variable a step (fuse=False)")
            args: list = []
            for slot, sub in step.operands:
                args.append(slots[slot])
                args.append(sub)
            args.append(step.out_sub + step.sum_sub)
            prod = _einsum(*args)
            if not step.summed:  # a pairwise product within a large bucket: nothing maximised yet
                slots.append(prod)
                continue
            back.append((step.summed[0], step.out_vars, prod.argmax(axis=-1)))
            slots.append(prod.max(axis=-1))
        logp = 0.0
        for slot in plan.constants:
            logp += float(np.log(slots[slot]))
    by_label: dict[int, int] = {}
    for label, scope, arg in reversed(back):
        by_label[label] = int(arg[tuple(by_label[u] for u in scope)])
    return {plan.variables[r]: j for r, j in by_label.items()}, logp


def log_evidence(
    tables: Sequence[np.ndarray], plan: Plan, evidence: Mapping[int, np.ndarray], batch: int
) -> np.ndarray:
    """log P(evidence) for a batch of evidence values (arrays of length `batch` per variable).

    The plan must have no targets and be built with `drop_separated=False`. Factors that touch
    evidence carry a leading batch axis; each intermediate factor is rescaled by its per-row
    maximum (the log scale is accumulated) so that long products cannot underflow.
    """
    slots: list[np.ndarray] = []
    batched: list[bool] = []
    for f in plan.factors:
        t = tables[f.node]
        if f.evidence_axes:
            axes = [a for a, _ in f.evidence_axes]
            t = np.moveaxis(t, axes, list(range(len(axes))))[tuple(evidence[v] for _, v in f.evidence_axes)]
        slots.append(t)
        batched.append(bool(f.evidence_axes))
    logscale = np.zeros(batch)
    with np.errstate(divide="ignore", invalid="ignore"):
        for step in plan.steps:
            lab = {v: i + 1 for i, v in enumerate(sorted(set(step.summed).union(*step.in_vars)))}
            if len(lab) >= MAX_LABELS:
                raise ChainruleError("variable elimination would loop over too many variables at once")
            args: list = []
            out_batched = False
            for slot, vs in zip(step.inputs, step.in_vars):
                args.append(slots[slot])
                sub = [lab[v] for v in vs]
                if batched[slot]:
                    sub = [0, *sub]
                    out_batched = True
                args.append(sub)
            out_sub = [lab[v] for v in step.out_vars]
            args.append([0, *out_sub] if out_batched else out_sub)
            out = _einsum(*args)
            if out_batched and out.ndim > 1:
                m = out.reshape(batch, -1).max(axis=1)
                m[m == 0] = 1.0
                out = out / m.reshape((batch,) + (1,) * (out.ndim - 1))
                logscale += np.log(m)
            slots.append(out)
            batched.append(out_batched)
        total = logscale
        for slot in plan.constants:
            total = total + np.log(slots[slot])
    return np.broadcast_to(total, (batch,)).copy()
