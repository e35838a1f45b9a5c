"""Greedy elimination orders for variable elimination: min-fill (default) and min-degree.

The cost of variable elimination is the size of the largest intermediate factor, which the order
decides. Min-fill picks, at each step, the variable whose elimination adds the fewest new edges
to the interaction graph (ties: fewest neighbours, then the lowest variable number, so orders are
deterministic). Min-degree picks the variable with the fewest neighbours (ties: the smallest
factor created, then the lowest number).

Graphs are bit masks: `adjacency[v]` is an int whose bit u is set when u and v share a factor
(bit v itself may be set). Orders are computed on every uncached query, so this is written for
low Python overhead: a fill count is one AND and one popcount per neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from chainrule.errors import ChainruleError

HEURISTICS = ("min-fill", "weighted-min-fill", "min-degree")
#: "best": the cheaper (total cells of the elimination cliques) of min-fill and weighted min-fill;
#: weighted min-fill wins on networks whose cardinalities differ widely (munin, pathfinder)
BEST_OF = ("min-fill", "weighted-min-fill")


def bits(mask: int) -> list[int]:
    """Indices of the set bits of `mask`, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


@lru_cache(maxsize=64)
def card_classes(cards: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(cardinality, mask of the variables with it) pairs, so that the number of cells of a
    variable set is a product of a few powers of popcounts instead of a loop over its members."""
    masks: dict[int, int] = {}
    for v, k in enumerate(cards):
        masks[k] = masks.get(k, 0) | 1 << v
    return tuple((k, m) for k, m in masks.items() if k != 1)


def cells(mask: int, classes: tuple[tuple[int, int], ...]) -> int:
    """Product of the cardinalities of the variables in `mask` (see card_classes)."""
    n = 1
    for k, m in classes:
        c = (mask & m).bit_count()
        if c:
            n *= k**c
    return n


def elimination_order(
    adjacency: Mapping[int, int],
    eliminate: int,
    cards: Sequence[int],
    heuristic: str = "min-fill",
) -> list[int]:
    """Order in which to sum out the variables in the bit mask `eliminate`.

    `adjacency` maps every variable of the graph (kept or eliminated) to its neighbour mask; it
    is not modified.
    """
    if heuristic not in HEURISTICS:
        raise ChainruleError(f"unknown elimination heuristic {heuristic!r}; use one of {HEURISTICS}")
    adj = {v: m & ~(1 << v) for v, m in adjacency.items()}
    classes = card_classes(tuple(cards))
    if heuristic == "min-fill":

        def score(v: int) -> tuple[int, int, int]:
            nb = adj[v]
            fill = 0
            m = nb
            while m:
                low = m & -m
                m ^= low
                fill += (nb & ~adj[low.bit_length() - 1] & ~low).bit_count()
            return (fill, nb.bit_count(), v)
    elif heuristic == "weighted-min-fill":
        card = list(cards)

        def score(v: int) -> tuple[int, int, int]:
            # each missing edge u-w among v's neighbours weighs card(u) * card(w): sum over u of
            # card(u) times the cardinality sum of the neighbours u is not yet joined to
            nb = adj[v]
            fill = sum(card[u] * sum(card[w] for w in bits(nb & ~adj[u] & ~(1 << u))) for u in bits(nb))
            return (fill, cells(nb | 1 << v, classes), v)
    else:

        def score(v: int) -> tuple[int, int, int]:
            nb = adj[v]
            return (nb.bit_count(), cells(nb, classes), v)

    scores = {v: score(v) for v in bits(eliminate)}
    order: list[int] = []
    while scores:
        v = min(scores, key=scores.__getitem__)
        del scores[v]
        order.append(v)
        bv = 1 << v
        nb = adj.pop(v)
        dirty = nb
        for a in bits(nb):
            na = (adj[a] | nb) & ~bv & ~(1 << a)
            adj[a] = na
            dirty |= na
        # Only variables within distance two of v can have a changed score.
        for u in bits(dirty):
            if u in scores:
                scores[u] = score(u)
    return order


def order_cost(adjacency: Mapping[int, int], order: Sequence[int], cards: Sequence[int]) -> int:
    """Total cells of the cliques that eliminating `order` creates (the work of the order)."""
    adj = {v: m & ~(1 << v) for v, m in adjacency.items()}
    classes = card_classes(tuple(cards))
    total = 0
    for v in order:
        nb = adj.pop(v)
        total += cells(nb | 1 << v, classes)
        for a in bits(nb):
            adj[a] = (adj[a] | nb) & ~(1 << v) & ~(1 << a)
    return total


def best_elimination_order(adjacency: Mapping[int, int], eliminate: int, cards: Sequence[int]) -> list[int]:
    """The cheaper (by `order_cost`) of the min-fill and weighted-min-fill orders."""
    orders = [elimination_order(adjacency, eliminate, cards, h) for h in BEST_OF]
    return min(orders, key=lambda o: order_cost(adjacency, o, cards))
