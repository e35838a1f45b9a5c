"""Directed acyclic graphs over integer-numbered nodes: topological order, cycles, ancestors.

Kept separate from the Bayesian network so that structure checks give one clear error (the
cycle itself, by name) before any table is looked at.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from chainrule.errors import ChainruleError


def find_cycle(parents: Sequence[Sequence[int]]) -> list[int] | None:
    """A directed cycle as a node list [a, b, ..., a] following edges parent -> child, or None."""
    n = len(parents)
    state = [0] * n  # 0 unvisited, 1 on the stack, 2 done
    for root in range(n):
        if state[root]:
            continue
        # Iterative DFS along child -> parent links; a back link closes a cycle.
        stack: list[tuple[int, int]] = [(root, 0)]
        path = [root]
        state[root] = 1
        while stack:
            node, k = stack[-1]
            if k < len(parents[node]):
                stack[-1] = (node, k + 1)
                p = parents[node][k]
                if state[p] == 1:
                    cycle = path[path.index(p) :] + [p]
                    return cycle[::-1]  # reverse: report along parent -> child edges
                if state[p] == 0:
                    state[p] = 1
                    stack.append((p, 0))
                    path.append(p)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def topological_order(parents: Sequence[Sequence[int]], names: Sequence[str] | None = None) -> list[int]:
    """Nodes with every parent before its children (stable: ties keep the node numbering).

    Raises ChainruleError naming a cycle if the graph is not acyclic.
    """
    cycle = find_cycle(parents)
    if cycle is not None:
        label = [names[i] for i in cycle] if names is not None else [str(i) for i in cycle]
        raise ChainruleError(
            f"the graph has a directed cycle: {' -> '.join(label)}; a Bayesian network needs a DAG"
        )
    n = len(parents)
    indegree = [len(set(p)) for p in parents]
    children: list[list[int]] = [[] for _ in range(n)]
    for child, ps in enumerate(parents):
        for p in set(ps):
            children[p].append(child)
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for c in children[node]:
            indegree[c] -= 1
            if indegree[c] == 0:
                heapq.heappush(ready, c)
    return order


def ancestor_masks(parents: Sequence[Sequence[int]], order: Sequence[int]) -> list[int]:
    """For each node, a bit mask (Python int) of itself and all its ancestors.

    Bit masks make "ancestors of a query" one OR per variable, which keeps barren-node pruning
    cheap enough to do on every query.
    """
    masks = [0] * len(parents)
    for node in order:
        m = 1 << node
        for p in parents[node]:
            m |= masks[p]
        masks[node] = m
    return masks
