"""Exact inference by variable elimination: a plan (which factors, which order) then einsum calls.

A query is answered in two phases. `build_plan` works on structure only: it keeps the factors
that can matter (the caller passes the ancestors of targets and evidence, so barren nodes are
already gone), drops the factors that evidence separates from the targets (they only scale the
result, and every query is normalised), orders the eliminations (the network's min-fill order
restricted to the query, or a min-fill / min-degree search on the query's own graph) and
precomputes the einsum sub-scripts of every step. Consecutive eliminations are fused into one
einsum call when the fused loop is cheaper than the extra call (numpy's einsum costs about 2 us a
call plus a few ns per cell and operand). `sum_product` / `log_evidence` / `max_product` then
only index the tables by the evidence values and call einsum once per step. Plans depend on the
query's signature (targets, evidence variables), not on evidence values, so callers cache them.

The einsum is numpy's C routine: on the small factors of a Bayesian network query the cost is
per-call overhead, about 2 us for it (4 us through np.einsum's Python wrapper) against 20-170 us
for torch.einsum (which routes three or more operands through opt_einsum's path search). Tables
are torch tensors everywhere else; the numpy arrays are views sharing their memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.graphical.elimination_order import bits, card_classes, cells, elimination_order

try:  # numpy's C einsum without the Python wrapper (dispatch, `optimize` handling): half the cost
    from numpy._core.multiarray import c_einsum as _einsum
except ImportError:  # pragma: no cover - numpy < 2 or a future layout
    try:
        from numpy.core.multiarray import c_einsum as _einsum
    except ImportError:
        _einsum = np.einsum

MAX_LABELS = 52  # numpy's einsum takes at most 52 distinct sub-script labels per call
CALL_COST = 2500.0  # ns per einsum call (measured, numpy 2, one thread)
CELL_COST = 3.5  # ns per cell of the joint loop per operand
MAX_FUSED_CELLS = 1 << 16


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


class Structure:
    """What plans need to know about a network, computed once: each node's table scope
    (parents..., node), the cardinalities, and a global min-fill order on the moral graph.

    Variables are relabelled by their position ("rank") in the global order, and every table's
    scope is kept as a rank tuple and a rank bit mask.
    """

    def __init__(self, scopes: Sequence[tuple[int, ...]], cards: Sequence[int], heuristic: str = "min-fill"):
        self.scopes = [tuple(s) for s in scopes]
        self.cards = list(cards)
        n = len(self.cards)
        adjacency: dict[int, int] = {v: 0 for v in range(n)}
        for scope in self.scopes:  # the moral graph: every table's scope is a clique
            m = 0
            for v in scope:
                m |= 1 << v
            for v in scope:
                adjacency[v] |= m
        self.order = elimination_order(adjacency, (1 << n) - 1, self.cards, heuristic)
        self.rank = [0] * n
        for r, v in enumerate(self.order):
            self.rank[v] = r
        self.rscopes = [tuple(self.rank[v] for v in s) for s in self.scopes]
        self.rmasks = []
        for rs in self.rscopes:
            m = 0
            for r in rs:
                m |= 1 << r
            self.rmasks.append(m)
        self.classes = card_classes(tuple(self.cards[v] for v in self.order))
        self.global_labels = n <= MAX_LABELS
        self._cells: dict[int, int] = {}

    def cells(self, rmask: int) -> int:
        """Number of joint states of the variables in the rank mask (memoised: plans ask often)."""
        n = self._cells.get(rmask)
        if n is None:
            n = cells(rmask, self.classes)
            if len(self._cells) < 1 << 16:
                self._cells[rmask] = n
        return n


def build_plan(
    structure: Structure,
    nodes: Iterable[int],
    targets: tuple[int, ...],
    evidence: Iterable[int],
    *,
    drop_separated: bool = True,
    fuse: bool = True,
    order: str = "global",
) -> Plan:
    """Plan the elimination of every variable of the tables of `nodes` except `targets`.

    With `drop_separated`, tables not connected to a target once evidence is instantiated are
    left out (exact for normalised queries). Without it (for P(evidence) and max-product), fully
    observed tables and each separate component end as scalars listed in `constants`.
    `fuse=False` keeps one step per eliminated variable (needed by max-product).

    `order="global"` eliminates in the network's min-fill order restricted to this query's
    variables: no per-query search, and since pruning and evidence only remove vertices and
    the targets are never eliminated, every elimination clique is a subset of a clique of the
    global order plus the targets. "min-fill" or "min-degree" search an order for this query's
    own interaction graph instead.
    """
    nodes = list(nodes)
    if order == "global":
        rank, rscopes, rmasks = structure.rank, structure.rscopes, structure.rmasks
        variables: Sequence[int] = structure.order
        ncells = structure.cells
    else:
        rank, rscopes, rmasks, variables, ncells = _query_ranks(structure, nodes, targets, evidence, order)
    ev_r = 0
    for v in evidence:
        ev_r |= 1 << rank[v]
    tg_r = 0
    for t in targets:
        tg_r |= 1 << rank[t]
    fmasks = [rmasks[n] & ~ev_r for n in nodes]

    if drop_separated and ev_r:
        # Grow the targets' connected component (variables linked through shared tables),
        # sweeping up (towards parents) then down until nothing changes. Without evidence every
        # ancestor of a target is connected to it, so there is nothing to drop.
        comp = tg_r
        keep = [False] * len(nodes)
        idx = list(range(len(nodes)))
        sweeps = [idx[::-1], idx]
        changed = True
        sweep = 0
        while changed:
            changed = False
            for i in sweeps[sweep & 1]:
                if not keep[i] and fmasks[i] & comp:
                    keep[i] = True
                    comp |= fmasks[i]
                    changed = True
            sweep += 1
        nodes = [f for f, k in zip(nodes, keep) if k]
        fmasks = [m for m, k in zip(fmasks, keep) if k]
        free = comp
    else:
        free = 0
        for m in fmasks:
            free |= m

    factors = []
    slot_vars: list[tuple[int, ...] | None] = []
    scopes = structure.scopes
    for node in nodes:
        rs = rscopes[node]
        if rmasks[node] & ev_r:
            scope = scopes[node]
            factors.append(
                Factor(node, tuple([(a, v) for a, v in enumerate(scope) if ev_r >> rank[v] & 1]), ())
            )
            slot_vars.append(tuple([r for r in rs if not ev_r >> r & 1]))
        else:
            factors.append(Factor(node, (), scopes[node]))
            slot_vars.append(rs)

    # Bucket elimination in rank space: a factor waits in the bucket of its lowest-ranked
    # variable still to be eliminated, so each step's inputs are exactly its bucket.
    elim = free & ~tg_r
    nf = len(factors)
    slot_mask = list(fmasks)
    buckets: dict[int, list[int]] = {}
    final: list[int] = []
    constants: list[int] = []

    def place(slot: int, m: int) -> None:
        e = m & elim
        if e:
            b = (e & -e).bit_length() - 1
            if b in buckets:
                buckets[b].append(slot)
            else:
                buckets[b] = [slot]
        elif m:
            final.append(slot)
        else:
            constants.append(slot)  # fully observed, or a component summed to a scalar

    for i, m in enumerate(fmasks):
        place(i, m)
    producer: list[int] = [-1] * nf
    pending: list[list] = []  # [inputs, summed mask, out slot, absorbed, cost, union]

    def add_step(inputs: list[int], summed: int, out_vars: tuple[int, ...] | None) -> int:
        union = 0
        for i in inputs:
            union |= slot_mask[i]
        own = CALL_COST + CELL_COST * ncells(union) * len(inputs)
        if fuse:
            for s in inputs:
                p = producer[s]
                if p < 0:
                    continue
                child = pending[p]
                fused_union = union | child[5]
                n = ncells(fused_union)
                if n > MAX_FUSED_CELLS:
                    continue
                fused_cost = CALL_COST + CELL_COST * n * (len(inputs) - 1 + len(child[0]))
                if fused_cost <= own + child[4]:
                    inputs = [i for i in inputs if i != s] + child[0]
                    summed |= child[1]
                    union = fused_union
                    own = fused_cost
                    child[3] = True
        slot = len(slot_mask)
        slot_mask.append(union & ~summed)
        slot_vars.append(out_vars)  # None: ascending labels, filled in when used
        producer.append(len(pending))
        pending.append([inputs, summed, slot, False, own, union])
        return slot

    e = elim
    while e:
        low = e & -e
        e ^= low
        slot = add_step(buckets.pop(low.bit_length() - 1), low, None)
        place(slot, slot_mask[slot])
    if targets:
        add_step(final, 0, tuple([rank[t] for t in targets]))

    # Number the executed steps' outputs after the factors and precompute sub-scripts.
    final_slot = list(range(nf)) + [-1] * len(pending)
    steps: list[Step] = []
    for inputs, summed, slot, absorbed, _, union in pending:
        if absorbed:
            continue
        final_slot[slot] = nf + len(steps)
        if slot_vars[slot] is None:
            slot_vars[slot] = tuple(bits(slot_mask[slot]))
        in_vars = tuple([slot_vars[s] for s in inputs])
        out_vars = slot_vars[slot]
        summed_vars = tuple(bits(summed))
        if structure.global_labels:  # ranks are the einsum labels
            operands = tuple([(final_slot[s], vs) for s, vs in zip(inputs, in_vars)])
            steps.append(Step(operands, in_vars, out_vars, summed_vars, out_vars, summed_vars))
            continue
        allv = bits(union | summed)
        if len(allv) > MAX_LABELS:
            raise ChainruleError(
                f"variable elimination would loop over {len(allv)} variables at once; too large to compute"
            )
        lab = {v: i for i, v in enumerate(allv)}
        operands = tuple([(final_slot[s], tuple([lab[v] for v in vs])) for s, vs in zip(inputs, in_vars)])
        steps.append(
            Step(
                operands,
                in_vars,
                out_vars,
                summed_vars,
                tuple([lab[v] for v in out_vars]),
                tuple([lab[v] for v in summed_vars]),
            )
        )
    return Plan(
        factors,
        steps,
        tuple(targets),
        variables,
        [variables[r] for r in bits(elim)],
        [final_slot[s] for s in constants],
        sum(p[4] for p in pending if not p[3]),
    )


def _query_ranks(structure: Structure, nodes: list[int], targets, evidence, heuristic: str):
    """Ranks from an order searched on this query's own interaction graph (targets ranked last)."""
    ev = set(evidence)
    adjacency: dict[int, int] = {}
    for node in nodes:
        m = 0
        for v in structure.scopes[node]:
            if v not in ev:
                m |= 1 << v
        for v in bits(m):
            adjacency[v] = adjacency.get(v, 0) | m
    target_mask = 0
    for t in targets:
        target_mask |= 1 << t
        adjacency.setdefault(t, 0)
    free = 0
    for v in adjacency:
        free |= 1 << v
    order = elimination_order(adjacency, free & ~target_mask, structure.cards, heuristic)
    variables = order + list(targets) + sorted(ev)
    variables += [v for v in range(len(structure.cards)) if v not in set(variables)]
    rank = [0] * len(variables)
    for r, v in enumerate(variables):
        rank[v] = r
    rscopes = [tuple(rank[v] for v in s) for s in structure.scopes]
    rmasks = []
    for rs in rscopes:
        m = 0
        for r in rs:
            m |= 1 << r
        rmasks.append(m)
    classes = card_classes(tuple(structure.cards[v] for v in variables))
    return rank, rscopes, rmasks, variables, lambda m: cells(m, classes)


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
    union scope, then takes max and argmax over its variable; the argmax tables are read back in
    reverse order.
    """
    slots = _reduce(tables, plan, evidence)
    back: list[tuple[int, tuple[int, ...], np.ndarray]] = []
    with np.errstate(divide="ignore"):
        for step in plan.steps:
            if len(step.summed) != 1:
                raise ChainruleError("max-product needs a plan with one variable a step (fuse=False)")
            args: list = []
            for slot, sub in step.operands:
                args.append(slots[slot])
                args.append(sub)
            args.append(step.out_sub + step.sum_sub)
            prod = _einsum(*args)
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
