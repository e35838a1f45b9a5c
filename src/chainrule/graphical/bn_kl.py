"""Exact KL divergence between two Bayesian networks over the same variables, by elimination.

Both log-densities are sums over their families, so
KL(P || Q) = sum_i E_P[log P(x_i | pa_P(i))] - sum_i E_P[log Q(x_i | pa_Q(i))],
and each expectation needs only P's marginal over one family ({i} plus its parents in P or in
Q), which variable elimination on P gives even when the joint is far too large to enumerate.
"""

from __future__ import annotations

import math

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork


def _expected_log_cpd(p: BayesianNetwork, table: torch.Tensor, family: list[str]) -> float:
    """E_P[log table[family]]: sum over P's marginal of the family (-inf where table is zero but
    the family is possible under P; 0 * log 0 counts as 0)."""
    marginal = p.query(family)
    possible = marginal > 0
    if (possible & (table <= 0)).any():
        return -math.inf
    return float((marginal[possible] * torch.log(table[possible])).sum())


def check_same_variables(p: BayesianNetwork, q: BayesianNetwork) -> None:
    """Refuse networks whose variables or states differ (the codes would mean different things)."""
    if p.names != q.names:
        raise ChainruleError("the two networks have different variables (or a different variable order)")
    differ = [v for v in p.names if p.state_names[v] != q.state_names[v]]
    if differ:
        raise ChainruleError(f"the two networks give variable(s) {differ[:5]} different states")


def bn_kl_divergence(p: BayesianNetwork, q: BayesianNetwork) -> float:
    """KL(p || q) in nats, exact (float64), by one family marginal of p per node of p and of q."""
    check_same_variables(p, q)
    total = 0.0
    for v in p.names:
        own = _expected_log_cpd(p, p.cpd(v), [*p.parents(v), v])
        cross = _expected_log_cpd(p, q.cpd(v), [*q.parents(v), v])
        if cross == -math.inf:
            return math.inf
        total += own - cross
    return max(total, 0.0) if total > -1e-12 else total
