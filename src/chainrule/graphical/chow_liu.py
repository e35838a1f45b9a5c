"""The Chow–Liu tree: the maximum-likelihood tree-shaped Bayesian network, found exactly.

For a tree (each node has at most one parent) the maximised log-likelihood is
N * sum over edges of I(X_parent; X_child) - N * sum over nodes of H(X_i), and the entropies do not
depend on the tree. So the best tree is the maximum spanning tree of the complete graph weighted
by pairwise (plug-in) mutual information — found exactly in O(n^2) by Prim's algorithm, where a
general DAG search is NP-hard. Every orientation away from a chosen root gives the same
likelihood (they are Markov equivalent); the root only decides the arrows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.tabular import counts


def mutual_information(data: torch.Tensor, cardinalities: Sequence[int]) -> torch.Tensor:
    """Plug-in mutual information I(X_i; X_j) in nats of every pair of columns, (n, n) float64."""
    x = torch.as_tensor(data).long()
    n = len(cardinalities)
    if x.dim() != 2 or x.shape[1] != n or x.shape[0] < 1:
        raise ChainruleError(f"data must be (rows >= 1, {n}) integer codes, got shape {tuple(x.shape)}")
    mi = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1, n):
            joint = counts(x[:, [i, j]], [cardinalities[i], cardinalities[j]]) / x.shape[0]
            outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
            nz = joint > 0
            mi[i, j] = mi[j, i] = (joint[nz] * (joint[nz] / outer[nz]).log()).sum().clamp_min(0.0)
    return mi


def maximum_spanning_tree(weights: torch.Tensor, root: int = 0) -> list[tuple[int, int]]:
    """Prim's maximum spanning tree of a dense symmetric weight matrix, as (parent, child) edges
    directed away from `root`, in the order the nodes joined the tree (ties: lowest index)."""
    n = weights.shape[0]
    if not 0 <= root < n:
        raise ChainruleError(f"root must be a node index in 0..{n - 1}, got {root}")
    in_tree = torch.zeros(n, dtype=torch.bool)
    in_tree[root] = True
    best = weights[root].clone()
    link = torch.full((n,), root, dtype=torch.long)
    edges: list[tuple[int, int]] = []
    for _ in range(n - 1):
        candidates = best.masked_fill(in_tree, float("-inf"))
        node = int(torch.argmax(candidates))
        edges.append((int(link[node]), node))
        in_tree[node] = True
        closer = (weights[node] > best) & ~in_tree
        best = torch.where(closer, weights[node], best)
        link = torch.where(closer, torch.full_like(link, node), link)
    return edges


def chow_liu_tree(data: torch.Tensor, cardinalities: Sequence[int], root: int = 0) -> list[tuple[int, int]]:
    """The Chow–Liu tree of `data` (B, n) as (parent, child) index pairs directed away from `root`."""
    return maximum_spanning_tree(mutual_information(data, cardinalities), root)
