"""Free-parameter counts of tabular models, and the table that compares a Bayesian network with them.

A distribution over k states has k - 1 free parameters, so over variables with cardinalities
k_1..k_n: full joint prod(k) - 1; fully independent sum(k - 1); Markov chain in the given order
(k_1 - 1) + sum_i k_{i-1} (k_i - 1); Bayesian network sum_i (k_i - 1) prod(k of parents of i).
Counts are exact Python integers (a full joint over 37 variables has about 10^16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainrule.graphical.bayesian_network import BayesianNetwork


def full_joint_parameters(cards: Sequence[int]) -> int:
    """Free parameters of one table over every joint state: prod(k) - 1."""
    return math.prod(cards) - 1


def independent_parameters(cards: Sequence[int]) -> int:
    """Free parameters of fully independent variables: sum(k - 1)."""
    return sum(k - 1 for k in cards)


def markov_chain_parameters(cards: Sequence[int]) -> int:
    """Free parameters of a first-order chain in the given order: (k_1 - 1) + sum k_{i-1} (k_i - 1)."""
    if not cards:
        return 0
    return (cards[0] - 1) + sum(cards[i - 1] * (cards[i] - 1) for i in range(1, len(cards)))


def bayesian_network_parameters(cards: Sequence[int], parents: Sequence[Sequence[int]]) -> int:
    """Free parameters of a Bayesian network: sum over nodes of (k_i - 1) x product of the parents'
    cardinalities (`parents[i]` holds the indices of node i's parents)."""
    return sum((cards[i] - 1) * math.prod(cards[p] for p in ps) for i, ps in enumerate(parents))


def parameter_counts(bn: BayesianNetwork) -> dict[str, int]:
    """Free parameters of `bn` and of the full-joint, independent and Markov-chain models over the
    same variables (the chain in the network's variable order)."""
    cards = bn.cardinalities
    return {
        "bayesian_network": bn.num_parameters(),
        "full_joint": full_joint_parameters(cards),
        "independent": independent_parameters(cards),
        "markov_chain": markov_chain_parameters(cards),
    }


def parameter_table(bn: BayesianNetwork) -> str:
    """A plain-text table of `parameter_counts`, with each count relative to the network's."""
    counts = parameter_counts(bn)
    base = max(counts["bayesian_network"], 1)
    rows = [("model", "free parameters", "x network")]
    for name, c in counts.items():
        rows.append((name.replace("_", " "), f"{c:,}", f"{c / base:.3g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
