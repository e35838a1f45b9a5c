"""Bucket elimination in rank space, and the einsum steps it produces (the second half of a plan).

A factor waits in the bucket of its lowest-ranked variable still to be eliminated, so each
step's inputs are exactly its bucket. A new step may absorb the step that produced one of its
inputs (one einsum instead of two) when the fused loop is estimated to be cheaper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chainrule.graphical.elimination_order import bits
from chainrule.graphical.plan_records import CALL_COST, CELL_COST, MAX_FUSED_CELLS, Step, check_labels


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
            if b in self.buckets:
                self.buckets[b].append(slot)
            else:
                self.buckets[b] = [slot]
        elif m:
            self.final.append(slot)
        else:
            self.constants.append(slot)

    def eliminate_all(self) -> None:
        """One step per variable to eliminate, lowest rank first."""
        e = self.elim
        while e:
            low = e & -e
            e ^= low
            slot = self.add_step(self.buckets.pop(low.bit_length() - 1), low, None)
            self.place(slot, self.slot_mask[slot])

    def add_step(self, inputs: list[int], summed: int, out_vars: tuple[int, ...] | None) -> int:
        """Queue a step (fusing in producers of its inputs where cheaper); returns its out slot."""
        slot_mask, ncells = self.slot_mask, self.ncells
        union = 0
        for i in inputs:
            union |= slot_mask[i]
        own = CALL_COST + CELL_COST * ncells(union) * len(inputs)
        if self.fuse:
            for s in inputs:
                p = self.producer[s]
                if p < 0:
                    continue
                child = self.pending[p]
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
        self.producer.append(len(self.pending))
        self.pending.append(PendingStep(inputs, summed, slot, False, own, union))
        return slot


def emit_steps(global_labels: bool, run: Eliminator, nf: int) -> tuple[list[Step], list[int]]:
    """Number the executed steps' outputs after the factors and precompute their sub-scripts;
    returns the steps and the final slot number of every pending slot."""
    final_slot = list(range(nf)) + [-1] * len(run.pending)
    slot_vars = run.slot_vars
    steps: list[Step] = []
    for p in run.pending:
        if p.absorbed:
            continue
        final_slot[p.slot] = nf + len(steps)
        if slot_vars[p.slot] is None:
            slot_vars[p.slot] = tuple(bits(run.slot_mask[p.slot]))
        in_vars = tuple([slot_vars[s] for s in p.inputs])
        out_vars = slot_vars[p.slot]
        summed_vars = tuple(bits(p.summed))
        if global_labels:  # ranks are the einsum labels
            operands = tuple([(final_slot[s], vs) for s, vs in zip(p.inputs, in_vars)])
            steps.append(Step(operands, in_vars, out_vars, summed_vars, out_vars, summed_vars))
            continue
        allv = bits(p.union | p.summed)
        check_labels(len(allv))
        lab = {v: i for i, v in enumerate(allv)}
        operands = tuple([(final_slot[s], tuple([lab[v] for v in vs])) for s, vs in zip(p.inputs, in_vars)])
        out_sub = tuple([lab[v] for v in out_vars])
        steps.append(
            Step(operands, in_vars, out_vars, summed_vars, out_sub, tuple([lab[v] for v in summed_vars]))
        )
    return steps, final_slot
