"""Bucket elimination in rank space, and the einsum steps it produces (the second half of a plan).

A factor waits in the bucket of its lowest-ranked variable still to be eliminated, so each
step's inputs are exactly its bucket. A new step may absorb the step that produced one of its
inputs (one einsum instead of two) when the fused loop is estimated to be cheaper. A bucket of
more than MAX_OPERANDS factors, or one whose single einsum would cost more than contracting it
pairwise, is contracted two factors at a time in a greedy order (the pair whose product grows
least, as opt_einsum's greedy path), so a node's number of children never meets einsum's
operand limit and no call loops over more than the pairs need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chainrule.graphical.elimination_order import bits
from chainrule.graphical.plan_records import (
    CALL_COST,
    CELL_COST,
    MAX_FUSED_CELLS,
    MAX_OPERANDS,
    PAIR_CANDIDATES,
    Step,
    check_labels,
)


@dataclass(slots=True)
class PendingStep:
    """A step before numbering: multiply `inputs` (slots), sum the rank mask `summed`, write
    `slot`. `absorbed` once a later step fused it in; `cost` its estimated time (ns); `union` the
    rank mask of its inputs' variables (what its loop runs over)."""

    inputs: list[int]
    summed: int
    slot: int
    absorbed: bool
    cost: float
    union: int


class Eliminator:
    """The state of bucket elimination: slot masks and labels, buckets, and the pending steps."""

    def __init__(
        self, elim: int, fmasks: list[int], slot_vars: list, ncells: Callable[[int], int], fuse: bool
    ):
        self.elim = elim
        self.ncells = ncells
        self.fuse = fuse
        self.slot_mask = list(fmasks)
        self.slot_vars = slot_vars  # None: ascending labels, filled in when used
        self.buckets: dict[int, list[int]] = {}
        self.final: list[int] = []
        self.constants: list[int] = []  # fully observed, or a component summed to a scalar
        self.producer: list[int] = [-1] * len(fmasks)
        self.pending: list[PendingStep] = []
        for i, m in enumerate(fmasks):
            self.place(i, m)

    def place(self, slot: int, m: int) -> None:
        """Put a slot in the bucket of its lowest variable to eliminate (or final / constants)."""
        e = m & self.elim
        if e:
            b = (e & -e).bit_length() - 1
            buckets = self.buckets
            if b in buckets:
                buckets[b].append(slot)
            else:
                buckets[b] = [slot]
        elif m:
            self.final.append(slot)
        else:
            self.constants.append(slot)

    def eliminate_all(self) -> None:
        """One step per variable to eliminate, lowest rank first."""
        e = self.elim
        buckets, slot_mask, add_step, place = self.buckets, self.slot_mask, self.add_step, self.place
        while e:
            low = e & -e
            e ^= low
            slot = add_step(buckets.pop(low.bit_length() - 1), low, None)
            place(slot, slot_mask[slot])

    def pair_order(self, inputs: list[int], summed: int) -> tuple[list[tuple[int, int, int]], float]:
        """A greedy pairwise contraction of `inputs` down to two operands: (a, b, mask summed
        there) per pair, operands named by position (new ones numbered on from len(inputs)),
        and its estimated cost. Each pair is the one whose product is smallest relative to its
        operands, searched among the PAIR_CANDIDATES smallest operands (bounded time)."""
        ncells = self.ncells
        masks = {k: self.slot_mask[s] for k, s in enumerate(inputs)}
        pairs: list[tuple[int, int, int]] = []
        cost = 0.0
        nxt = len(inputs)
        while len(masks) > 2:
            small = sorted(masks, key=lambda k: (ncells(masks[k]), k))[:PAIR_CANDIDATES]
            best = None
            for i, a in enumerate(small):
                for b in small[i + 1 :]:
                    n = ncells(masks[a] | masks[b])
                    key = (n - ncells(masks[a]) - ncells(masks[b]), n)
                    if best is None or key < best[0]:
                        best = (key, a, b)
            _, a, b = best
            joint = masks.pop(a) | masks.pop(b)
            others = 0
            for m in masks.values():
                others |= m
            now = summed & joint & ~others
            summed &= ~now
            cost += CALL_COST + 2 * CELL_COST * ncells(joint)
            pairs.append((a, b, now))
            masks[nxt] = joint & ~now
            nxt += 1
        return pairs, cost

    def add_step(self, inputs: list[int], summed: int, out_vars: tuple[int, ...] | None) -> int:
        """Queue a step (fusing in producers of its inputs where cheaper; a large bucket
        contracted pairwise first, see `pair_order`); returns its out slot."""
        slot_mask, ncells, producer, pending = self.slot_mask, self.ncells, self.producer, self.pending
        union = 0
        for i in inputs:
            union |= slot_mask[i]
        own = CALL_COST + CELL_COST * ncells(union) * len(inputs)
        if len(inputs) > 2 and (len(inputs) > MAX_OPERANDS or ncells(union) > MAX_FUSED_CELLS):
            pairs, pair_cost = self.pair_order(inputs, summed)
            if len(inputs) > MAX_OPERANDS or pair_cost + 2 * CELL_COST * ncells(union) < own:
                return self.add_pairwise(inputs, summed, out_vars, pairs)
        if self.fuse:
            for s in inputs:
                p = producer[s]
                if p < 0:
                    continue
                child = pending[p]
                if len(inputs) - 1 + len(child.inputs) > MAX_OPERANDS:
                    continue
                fused_union = union | child.union
                n = ncells(fused_union)
                if n > MAX_FUSED_CELLS:
                    continue
                fused_cost = CALL_COST + CELL_COST * n * (len(inputs) - 1 + len(child.inputs))
                if fused_cost <= own + child.cost:
                    inputs = [i for i in inputs if i != s] + child.inputs
                    summed |= child.summed
                    union = fused_union
                    own = fused_cost
                    child.absorbed = True
        slot = len(slot_mask)
        slot_mask.append(union & ~summed)
        self.slot_vars.append(out_vars)
        producer.append(len(pending))
        pending.append(PendingStep(inputs, summed, slot, False, own, union))
        return slot

    def add_pairwise(
        self, inputs: list[int], summed: int, out_vars: tuple[int, ...] | None, pairs: list
    ) -> int:
        """Queue the pairwise steps of `pair_order`, then the last step over the final two."""
        operands = list(inputs)
        for a, b, now in pairs:
            operands.append(self.add_step([operands[a], operands[b]], now, None))
            summed &= ~now
            operands[a] = operands[b] = -1
        return self.add_step([s for s in operands if s >= 0], summed, out_vars)


def emit_steps(global_labels: bool, run: Eliminator, nf: int) -> tuple[list[Step], list[int]]:
    """Number the executed steps' outputs after the factors and precompute their sub-scripts;
    returns the steps and the final slot number of every pending slot."""
    final_slot = list(range(nf)) + [-1] * len(run.pending)
    slot_vars = run.slot_vars
    steps: list[Step] = []
    for p in run.pending:
        if p.absorbed:
            continue
        slot, inputs = p.slot, p.inputs
        final_slot[slot] = nf + len(steps)
        out_vars = slot_vars[slot]
        if out_vars is None:
            out_vars = slot_vars[slot] = tuple(bits(run.slot_mask[slot]))
        in_vars = tuple([slot_vars[s] for s in inputs])
        summed_vars = tuple(bits(p.summed))
        if global_labels:  # ranks are the einsum labels
            operands = tuple([(final_slot[s], vs) for s, vs in zip(inputs, in_vars)])
            steps.append(Step(operands, in_vars, out_vars, summed_vars, out_vars, summed_vars))
            continue
        allv = bits(p.union | p.summed)
        check_labels(len(allv))
        lab = {v: i for i, v in enumerate(allv)}
        operands = tuple([(final_slot[s], tuple([lab[v] for v in vs])) for s, vs in zip(inputs, in_vars)])
        out_sub = tuple([lab[v] for v in out_vars])
        steps.append(
            Step(operands, in_vars, out_vars, summed_vars, out_sub, tuple([lab[v] for v in summed_vars]))
        )
    return steps, final_slot
