"""Score-based structure search: greedy hill climbing over DAGs with a tabu list.

Each step looks at every legal single-edge move — add u -> v, remove u -> v, reverse u -> v — and
takes the one that raises the decomposable score (structure_scores.py) most. A move changes the
family score of one node (add, remove) or two (reverse), so its gain is read from cached family
scores. Acyclicity is kept with descendant bit masks recomputed once per step: adding u -> v is
legal unless u is a descendant of v; reversing u -> v is legal unless another parent of v is a
descendant of u (then v -> u would close a cycle). A tabu list of the last `tabu_length` moves'
inverses keeps the search from undoing them; with `patience` > 0 the search also takes the best
non-improving move at a local maximum (tabu search proper), until `patience` moves in a row have
not beaten the best graph seen, and returns that graph (patience 10 by default, as bnlearn's
tabu search). With patience 0 it is plain hill climbing: it stops at the first local maximum, as
pgmpy's HillClimbSearch does. Gains equal up to rounding go to the first move in enumeration
order (parent-major over the column order), so the result is deterministic.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chainrule.errors import ChainruleError
from chainrule.graphical.dag import find_cycle, topological_order
from chainrule.graphical.structure_scores import FamilyScores

Move = tuple[str, int, int]  # ("add" | "remove" | "reverse", parent, child)


@dataclass
class SearchResult:
    """What a structure search found: each node's parents (indices), its score, and the cost."""

    parents: list[tuple[int, ...]]
    score: float
    steps: int
    families_scored: int

    def edges(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs, grouped by child."""
        return [(p, c) for c, ps in enumerate(self.parents) for p in ps]


def descendant_masks(parents: Sequence[Sequence[int]]) -> list[int]:
    """For each node, a bit mask of itself and every node reachable from it along edges."""
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for c, ps in enumerate(parents):
        for p in ps:
            children[p].append(c)
    masks = [0] * n
    for node in reversed(topological_order(parents)):
        m = 1 << node
        for c in children[node]:
            m |= masks[c]
        masks[node] = m
    return masks


def _inverse(move: Move) -> Move:
    kind, u, v = move
    if kind == "add":
        return ("remove", u, v)
    if kind == "remove":
        return ("add", u, v)
    return ("reverse", v, u)  # u -> v became v -> u; reversing it back is the inverse


def legal_moves(
    parents: Sequence[set[int]], scores: FamilyScores, max_indegree: int | None
) -> Iterator[tuple[Move, float]]:
    """Every single-edge move that keeps the graph a DAG within `max_indegree`, with its gain."""
    n = len(parents)
    cap = n if max_indegree is None else max_indegree
    desc = descendant_masks([sorted(ps) for ps in parents])
    base = [scores(v, parents[v]) for v in range(n)]
    for u in range(n):
        for v in range(n):
            if u == v:
                continue
            pv = parents[v]
            if u in pv:
                without = scores(v, pv - {u}) - base[v]
                yield ("remove", u, v), without
                if len(parents[u]) < cap and not any(desc[u] >> p & 1 for p in pv if p != u):
                    yield ("reverse", u, v), without + scores(u, parents[u] | {v}) - base[u]
            elif v not in parents[u] and len(pv) < cap and not desc[v] >> u & 1:
                yield ("add", u, v), scores(v, pv | {u}) - base[v]


def _best_move(moves: Iterator[tuple[Move, float]], banned: Counter[Move]) -> tuple[Move, float] | None:
    """The move of largest gain that is not tabu. Gains equal up to rounding (an edge and its
    reverse often gain the same) go to the first in enumeration order, so results do not hang on
    the last bits of a float."""
    best: tuple[Move, float] | None = None
    for move, gain in moves:
        if banned[move]:
            continue
        if best is None or gain > best[1] + 1e-9 * max(1.0, abs(best[1])):
            best = (move, gain)
    return best


def _apply(parents: list[set[int]], move: Move) -> None:
    kind, u, v = move
    if kind == "add":
        parents[v].add(u)
    elif kind == "remove":
        parents[v].discard(u)
    else:
        parents[v].discard(u)
        parents[u].add(v)


def _start(scores: FamilyScores, start: Sequence[Sequence[int]] | None, cap: int | None) -> list[set[int]]:
    n = scores.num_variables
    if start is None:
        return [set() for _ in range(n)]
    if len(start) != n:
        raise ChainruleError(f"start must give the parents of all {n} nodes, got {len(start)}")
    parents = [set(int(p) for p in ps) for ps in start]
    if any(not 0 <= p < n or p == c for c, ps in enumerate(parents) for p in ps):
        raise ChainruleError("start has a parent index out of range or a self-loop")
    if find_cycle([sorted(ps) for ps in parents]) is not None:
        raise ChainruleError("the start graph has a directed cycle")
    if cap is not None and any(len(ps) > cap for ps in parents):
        raise ChainruleError(f"the start graph has a node with more than max_indegree={cap} parents")
    return parents


def _climb(
    scores: FamilyScores,
    parents: list[set[int]],
    max_indegree: int | None,
    tabu_length: int,
    patience: int,
    epsilon: float,
    max_steps: int,
) -> tuple[float, list[tuple[int, ...]], int]:
    """One tabu-guided climb from `parents` (changed in place): (best score, its parents, moves)."""
    current = scores.total(parents)
    best = (current, [tuple(sorted(ps)) for ps in parents])
    tabu: deque[Move] = deque()
    banned: Counter[Move] = Counter()
    stale = steps = 0
    while steps < max_steps:
        choice = _best_move(legal_moves(parents, scores, max_indegree), banned)
        if choice is None:
            break
        move, gain = choice
        if gain < epsilon and stale >= patience:
            break
        _apply(parents, move)
        current += gain
        steps += 1
        tabu.append(_inverse(move))
        banned[tabu[-1]] += 1
        if len(tabu) > tabu_length:
            banned[tabu.popleft()] -= 1
        if current >= best[0] + epsilon:
            best, stale = (current, [tuple(sorted(ps)) for ps in parents]), 0
        else:
            stale += 1
    return best[0], best[1], steps


def _perturb(
    parents: Sequence[tuple[int, ...]],
    scores: FamilyScores,
    max_indegree: int | None,
    moves: int,
    rng: random.Random,
) -> list[set[int]]:
    """`parents` after `moves` legal single-edge moves drawn at random (a restart's kick)."""
    out = [set(ps) for ps in parents]
    for _ in range(moves):
        legal = [m for m, _ in legal_moves(out, scores, max_indegree)]
        if legal:
            _apply(out, rng.choice(legal))
    return out


def hill_climb(
    scores: FamilyScores,
    *,
    start: Sequence[Sequence[int]] | None = None,
    max_indegree: int | None = None,
    tabu_length: int = 100,
    patience: int = 30,
    restarts: int = 0,
    perturb: int = 8,
    seed: int = 0,
    epsilon: float = 1e-4,
    max_steps: int = 1_000_000,
) -> SearchResult:
    """Greedy best-move search from `start` (each node's parent indices; default the empty graph).

    A climb stops when no move gains at least `epsilon` nats — with patience > 0, only once
    `patience` moves in a row have not raised the best score seen by `epsilon` — or after
    `max_steps` moves. With `restarts` > 0 the search then kicks the best graph with `perturb`
    random moves (drawn with `seed`) and climbs again, that many times (family scores stay cached,
    so a restart costs little). Returns the best-scoring graph seen.
    """
    if max_indegree is not None and max_indegree < 0:
        raise ChainruleError(f"max_indegree must be >= 0, got {max_indegree}")
    if min(tabu_length, patience, restarts, perturb) < 0:
        raise ChainruleError("tabu_length, patience, restarts and perturb must be >= 0")
    settings = (max_indegree, tabu_length, patience, epsilon, max_steps)
    score, parents, steps = _climb(scores, _start(scores, start, max_indegree), *settings)
    rng = random.Random(seed)
    for _ in range(restarts):
        kicked = _perturb(parents, scores, max_indegree, perturb, rng)
        s, p, k = _climb(scores, kicked, *settings)
        steps += k + perturb
        if s > score + epsilon:
            score, parents = s, p
    return SearchResult(parents=parents, score=score, steps=steps, families_scored=scores.evaluations)
