"""Learning a Bayesian network's structure from data ("knowledge discovery"), and comparing graphs.

`learn_structure(data, variables)` finds a DAG — by hill climbing on a decomposable score (BIC,
BDeu, K2; structure_search.py) or as the Chow–Liu tree (chow_liu.py) — and returns a
`BayesianNetwork` with that graph and CPDs counted from the same data (`fit`, with `alpha`
pseudo-counts), ready for queries, `log_prob`, `kl_divergence` or `write_bif`.

`structural_hamming_distance(true, learned)` is the standard SHD between two DAGs over the same
variables: edges to add + edges to delete + edges to reverse to turn one into the other (a
reversed edge counts once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.bn_tables import VariableSpec
from chainrule.graphical.chow_liu import chow_liu_tree
from chainrule.graphical.structure_scores import FamilyScores
from chainrule.graphical.structure_search import hill_climb

#: Structure learning methods, by name.
METHODS = ("hill-climb", "chow-liu")


def states_from_data(data: torch.Tensor, names: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(name, cardinality) per column: states 0..max code seen (names "x0", "x1", ... by default)."""
    x = torch.as_tensor(data)
    if x.dim() != 2 or x.shape[0] < 1:
        raise ChainruleError(f"data must be (rows >= 1, variables) integer codes, got shape {tuple(x.shape)}")
    if (x < 0).any():
        raise ChainruleError("structure learning needs complete data: the codes hold missing values (-1)")
    names = [f"x{j}" for j in range(x.shape[1])] if names is None else list(names)
    if len(names) != x.shape[1]:
        raise ChainruleError(f"{len(names)} names for {x.shape[1]} columns")
    return [(v, int(c) + 1) for v, c in zip(names, x.max(0).values.tolist())]


def learn_structure(
    data: torch.Tensor,
    variables: VariableSpec | None = None,
    *,
    method: str = "hill-climb",
    score: str = "bic",
    equivalent_sample_size: float = 10.0,
    max_indegree: int | None = None,
    tabu_length: int = 100,
    patience: int = 30,
    restarts: int = 10,
    seed: int = 0,
    start: Iterable[tuple[str, str]] | None = None,
    root: str | None = None,
    alpha: float = 1.0,
    name: str = "learned",
) -> BayesianNetwork:
    """A Bayesian network whose graph is learned from complete integer codes `data` (B, n).

    Args:
        data: state codes, column j in 0..(states of variable j) - 1.
        variables: name -> states (or cardinality) in column order, as `BayesianNetwork` takes;
            None: names x0, x1, ... and states 0..max code seen per column.
        method: "hill-climb" (score-based search) or "chow-liu" (the best tree, exactly).
        score: "bic", "bdeu" (with `equivalent_sample_size`), "k2" or "ll" (hill climbing only).
        max_indegree: most parents a node may get (None: no limit).
        tabu_length: see `structure_search.hill_climb` (here tabu search with 10 random restarts
            by default; patience=0, restarts=0: plain hill climbing).
        patience: see `structure_search.hill_climb`.
        restarts: see `structure_search.hill_climb`.
        seed: see `structure_search.hill_climb`.
        start: (parent, child) edges the search starts from (default: the empty graph).
        root: the Chow–Liu tree's root (default: the first variable).
        alpha: pseudo-counts of the CPDs fitted to the learned graph (0 = maximum likelihood).
        name: the returned network's name.
    """
    if method not in METHODS:
        raise ChainruleError(f"unknown structure learning method {method!r}; choose {' or '.join(METHODS)}")
    x = torch.as_tensor(data)
    empty = BayesianNetwork(states_from_data(x) if variables is None else variables, name=name)
    x = empty.check_data(x, what="data")
    names, cards = empty.names, empty.cardinalities
    if method == "chow-liu":
        edges = chow_liu_tree(x, cards, root=0 if root is None else _index(empty, root))
    else:
        starting = None if start is None else _parent_lists(empty, start)
        result = hill_climb(
            FamilyScores(x, cards, score, equivalent_sample_size),
            start=starting,
            max_indegree=max_indegree,
            tabu_length=tabu_length,
            patience=patience,
            restarts=restarts,
            seed=seed,
        )
        edges = result.edges()
    states = [(v, empty.state_names[v]) for v in names]
    learned = BayesianNetwork(states, [(names[p], names[c]) for p, c in edges], name=name)
    return learned.fit(x, alpha=alpha)


def _index(bn: BayesianNetwork, name: str) -> int:
    if name not in bn.names:
        raise ChainruleError(f"unknown variable {name!r}; variables: {', '.join(bn.names[:12])}")
    return bn.names.index(name)


def _parent_lists(bn: BayesianNetwork, edges: Iterable[tuple[str, str]]) -> list[list[int]]:
    parents: list[list[int]] = [[] for _ in bn.names]
    for p, c in edges:
        parents[_index(bn, c)].append(_index(bn, p))
    return parents


def _edge_set(graph: BayesianNetwork | Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    edges = graph.edges if isinstance(graph, BayesianNetwork) else graph
    return {(str(p), str(c)) for p, c in edges}


def edge_differences(
    true: BayesianNetwork | Iterable[tuple[str, str]], learned: BayesianNetwork | Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """How `learned` differs from `true` (networks or (parent, child) edge lists): counts of
    "extra" (in learned, not in true either way), "missing" (in true, not in learned either way),
    "reversed" (in both, opposite directions), their sum "shd", and the edge lists themselves."""
    a, b = _edge_set(true), _edge_set(learned)
    reversed_ = sorted(e for e in a if e not in b and e[::-1] in b)
    missing = sorted(e for e in a if e not in b and e[::-1] not in b)
    extra = sorted(e for e in b if e not in a and e[::-1] not in a)
    return {
        "shd": len(extra) + len(missing) + len(reversed_),
        "extra": len(extra),
        "missing": len(missing),
        "reversed": len(reversed_),
        "edges": {"extra": extra, "missing": missing, "reversed": reversed_},
    }


def structural_hamming_distance(
    true: BayesianNetwork | Iterable[tuple[str, str]], learned: BayesianNetwork | Iterable[tuple[str, str]]
) -> int:
    """Edge additions + deletions + reversals that turn `learned` into `true` (the DAG SHD)."""
    return int(edge_differences(true, learned)["shd"])


def network_score(
    bn: BayesianNetwork, data: torch.Tensor, score: str = "bic", equivalent_sample_size: float = 10.0
) -> float:
    """The structure score (nats, higher is better) of `bn`'s graph on `data` (its CPDs unused)."""
    x = bn.check_data(torch.as_tensor(data), what="data")
    parents = [[bn.names.index(p) for p in bn.parents(v)] for v in bn.names]
    return FamilyScores(x, bn.cardinalities, score, equivalent_sample_size).total(parents)
