"""Random inference queries for a Bayesian network, for tests, benchmarks and teaching."""

from __future__ import annotations

import random

import torch

from chainrule.graphical.bayesian_network import BayesianNetwork


def random_queries(bn: BayesianNetwork, n: int, seed: int = 0) -> list[tuple[list[str], dict[str, str]]]:
    """`n` queries (targets, evidence): 1-3 targets and 0-4 evidence variables, the evidence set to
    the states of one ancestral sample of the network, so that P(evidence) > 0."""
    rng = random.Random(seed)
    rows = bn.sample(n, generator=torch.Generator().manual_seed(seed)).tolist()
    queries = []
    for row in rows:
        nt, ne = rng.randint(1, 3), rng.randint(0, 4)
        chosen = rng.sample(range(len(bn.names)), nt + ne)
        evidence = {bn.names[i]: bn.state_names[bn.names[i]][row[i]] for i in chosen[nt:]}
        queries.append(([bn.names[i] for i in chosen[:nt]], evidence))
    return queries
