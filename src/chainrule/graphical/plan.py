"""Elimination plans: which factors a query needs, in which order they are eliminated, and the
einsum sub-scripts of every step, worked out from the network's structure alone.

`build_plan` keeps the factors that can matter (the caller passes the ancestors of targets and
evidence, so barren nodes are already gone), drops the factors that evidence separates from the
targets (they only scale the result, and every query is normalised), orders the eliminations (the
network's min-fill order restricted to the query, or a min-fill / min-degree search on the
query's own graph) and precomputes the einsum sub-scripts of every step. Consecutive eliminations
are fused into one einsum call when the fused loop is cheaper than the extra call (numpy's einsum
costs about 2 us a call plus a few ns per cell and operand). Plans depend on the query's
signature (targets, evidence variables), not on evidence values, so callers cache them.

Variable sets are bit masks over *ranks* (positions in the elimination order), which makes "the
next variable to eliminate" a lowest set bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from chainrule.graphical.elimination_order import (
    best_elimination_order,
    bits,
    card_classes,
    cells,
    elimination_order,
)
from chainrule.graphical.plan_records import MAX_LABELS, Factor, Plan
from chainrule.graphical.plan_steps import Eliminator, emit_steps


class Ranks(NamedTuple):
    """A relabelling of the variables by elimination rank: `rank[v]`, each table's scope as ranks
    (`rscopes`) and as a rank mask (`rmasks`), `variables[r]` (the inverse) and `cells(mask)`."""

    rank: list[int]
    rscopes: list[tuple[int, ...]]
    rmasks: list[int]
    variables: Sequence[int]
    cells: Callable[[int], int]


def _rank_scopes(scopes: Sequence[tuple[int, ...]], rank: Sequence[int]) -> tuple[list, list[int]]:
    rscopes = [tuple(rank[v] for v in s) for s in scopes]
    rmasks = []
    for rs in rscopes:
        m = 0
        for r in rs:
            m |= 1 << r
        rmasks.append(m)
    return rscopes, rmasks


class Structure:
    """What plans need to know about a network, computed once: each node's table scope
    (parents..., node), the cardinalities, and a global elimination order on the moral graph (the
    cheaper of min-fill and weighted min-fill, see `best_elimination_order`).

    Variables are relabelled by their position ("rank") in the global order, and every table's
    scope is kept as a rank tuple and a rank bit mask.
    """

    def __init__(self, scopes: Sequence[tuple[int, ...]], cards: Sequence[int], heuristic: str = "best"):
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
        if heuristic == "best":
            self.order = best_elimination_order(adjacency, (1 << n) - 1, self.cards)
        else:
            self.order = elimination_order(adjacency, (1 << n) - 1, self.cards, heuristic)
        self.rank = [0] * n
        for r, v in enumerate(self.order):
            self.rank[v] = r
        self.rscopes, self.rmasks = _rank_scopes(self.scopes, self.rank)
        self.classes = card_classes(tuple(self.cards[v] for v in self.order))
        self.global_labels = n <= MAX_LABELS
        self._cells: dict[int, int] = {}
        self.ranks = Ranks(self.rank, self.rscopes, self.rmasks, self.order, self.cells)

    def cells(self, rmask: int) -> int:
        """Number of joint states of the variables in the rank mask (memoised: plans ask often)."""
        n = self._cells.get(rmask)
        if n is None:
            n = cells(rmask, self.classes)
            if len(self._cells) < 1 << 16:
                self._cells[rmask] = n
        return n


def query_ranks(structure: Structure, nodes: list[int], targets, evidence, heuristic: str) -> Ranks:
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
    rscopes, rmasks = _rank_scopes(structure.scopes, rank)
    classes = card_classes(tuple(structure.cards[v] for v in variables))
    return Ranks(rank, rscopes, rmasks, variables, lambda m: cells(m, classes))


def connected_to_targets(
    nodes: list[int], fmasks: list[int], targets: int
) -> tuple[list[int], list[int], int]:
    """The nodes whose (evidence-reduced) tables are connected to the targets through shared
    variables, their masks, and the union of their variables.

    Grows the targets' component sweeping up (towards parents) then down until nothing changes.
    Without evidence every ancestor of a target is connected to it, so callers skip this."""
    comp = targets
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
    return [f for f, k in zip(nodes, keep) if k], [m for m, k in zip(fmasks, keep) if k], comp


def reduced_factors(structure: Structure, ranks: Ranks, nodes: list[int], ev_r: int):
    """Each node's table with its evidence axes marked, and the rank labels of its free axes."""
    factors: list[Factor] = []
    slot_vars: list[tuple[int, ...] | None] = []
    rank, rscopes, rmasks, scopes = ranks.rank, ranks.rscopes, ranks.rmasks, structure.scopes
    for node in nodes:
        rs = rscopes[node]
        scope = scopes[node]
        if rmasks[node] & ev_r:
            factors.append(
                Factor(node, tuple([(a, v) for a, v in enumerate(scope) if ev_r >> rank[v] & 1]), ())
            )
            slot_vars.append(tuple([r for r in rs if not ev_r >> r & 1]))
        else:
            factors.append(Factor(node, (), scope))
            slot_vars.append(rs)
    return factors, slot_vars


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
    ranks = structure.ranks if order == "global" else query_ranks(structure, nodes, targets, evidence, order)
    rank, rmasks = ranks.rank, ranks.rmasks
    ev_r = 0
    for v in evidence:
        ev_r |= 1 << rank[v]
    tg_r = 0
    for t in targets:
        tg_r |= 1 << rank[t]
    fmasks = [rmasks[n] & ~ev_r for n in nodes]
    if drop_separated and ev_r:
        nodes, fmasks, free = connected_to_targets(nodes, fmasks, tg_r)
    else:
        free = 0
        for m in fmasks:
            free |= m
    factors, slot_vars = reduced_factors(structure, ranks, nodes, ev_r)
    elim = free & ~tg_r
    run = Eliminator(elim, fmasks, slot_vars, ranks.cells, fuse)
    run.eliminate_all()
    if targets:
        run.add_step(run.final, 0, tuple([rank[t] for t in targets]))
    steps, final_slot = emit_steps(structure.global_labels, run, len(factors))
    return Plan(
        factors,
        steps,
        tuple(targets),
        ranks.variables,
        [ranks.variables[r] for r in bits(elim)],
        [final_slot[s] for s in run.constants],
        sum(p.cost for p in run.pending if not p.absorbed),
    )
