"""Structure learning: scores equal pgmpy's, hill climbing keeps a DAG and beats or ties pgmpy's
HillClimbSearch, the Chow–Liu tree is the best tree (brute force) and pgmpy's, SHD counts right."""

from __future__ import annotations

import itertools
import logging
import warnings
from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical import (
    BayesianNetwork,
    FamilyScores,
    chow_liu_tree,
    edge_differences,
    hill_climb,
    learn_structure,
    network_score,
    read_bif,
    structural_hamming_distance,
    write_bif,
)
from chainrule.graphical.dag import find_cycle

BIF = Path(__file__).parent / "data" / "bif"


def sample(net: str, n: int, seed: int = 0) -> tuple[BayesianNetwork, torch.Tensor]:
    true = read_bif(BIF / f"{net}.bif.gz")
    return true, true.sample(n, generator=torch.Generator().manual_seed(seed))


def states(bn: BayesianNetwork) -> list[tuple[str, list[str]]]:
    return [(v, bn.state_names[v]) for v in bn.names]


@pytest.fixture(scope="module")
def pgmpy():
    pytest.importorskip("pgmpy")
    pytest.importorskip("pandas")
    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas as pd
        from pgmpy import estimators

    def frame(bn: BayesianNetwork, x: torch.Tensor):
        sn = {v: list(range(len(bn.state_names[v]))) for v in bn.names}
        return pd.DataFrame(x.numpy(), columns=bn.names), sn

    return estimators, frame


@pytest.mark.parametrize("score", ["bic", "bdeu", "k2"])
def test_scores_equal_pgmpys(pgmpy, score: str) -> None:
    estimators, frame = pgmpy
    true, x = sample("asia", 2000)
    df, sn = frame(true, x)
    theirs = {"bic": estimators.BIC, "bdeu": estimators.BDeu, "k2": estimators.K2}[score](df, state_names=sn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgmpy.base import DAG
    dag = DAG(true.edges)
    dag.add_nodes_from(true.names)
    assert network_score(true, x, score) == pytest.approx(theirs.score(dag), rel=1e-9)
    empty = BayesianNetwork(states(true))
    assert network_score(empty, x, score) < network_score(true, x, score)


def test_family_scores_decompose_and_cache() -> None:
    true, x = sample("asia", 500)
    fs = FamilyScores(x, true.cardinalities, "bic")
    parents = [[true.names.index(p) for p in true.parents(v)] for v in true.names]
    total = fs.total(parents)
    assert total == pytest.approx(sum(fs(i, ps) for i, ps in enumerate(parents)))
    seen = fs.evaluations
    assert fs(5, [3, 1]) == fs(5, [1, 3]) and fs.evaluations <= seen + 1  # parent order is irrelevant
    ll = FamilyScores(x, true.cardinalities, "ll")
    assert ll(7, [5]) >= ll(7, []) and ll.total(parents) > total  # BIC = LL less a penalty
    with pytest.raises(ChainruleError, match="unknown structure score"):
        FamilyScores(x, true.cardinalities, "aic")


def test_hill_climb_keeps_a_dag_within_max_indegree() -> None:
    true, x = sample("child", 1000)
    for cap in (None, 1, 2):
        result = hill_climb(FamilyScores(x, true.cardinalities, "bic"), max_indegree=cap)
        assert find_cycle(result.parents) is None
        if cap is not None:
            assert max(len(ps) for ps in result.parents) <= cap
        assert result.score == pytest.approx(FamilyScores(x, true.cardinalities, "bic").total(result.parents))
    plain = hill_climb(FamilyScores(x, true.cardinalities, "bic"), patience=0)
    tabu = hill_climb(FamilyScores(x, true.cardinalities, "bic"), patience=10)
    assert tabu.score >= plain.score - 1e-6  # tabu search returns the best graph it has seen


def test_hill_climb_from_the_true_graph_does_not_lose_score() -> None:
    true, x = sample("sachs", 2000)
    fs = FamilyScores(x, true.cardinalities, "bic")
    start = [[true.names.index(p) for p in true.parents(v)] for v in true.names]
    assert hill_climb(fs, start=start).score >= fs.total(start) - 1e-9
    with pytest.raises(ChainruleError, match="cycle"):
        hill_climb(fs, start=[[1], [0]] + [[] for _ in range(len(true.names) - 2)])


#: structural Hamming distance of `learn_structure(..., restarts=20)` to the true graph on these
#: samples when written (2026-12-05); pgmpy's HillClimbSearch varies between runs on the same
#: samples (hash order), e.g. 3 to 9 for sachs with BDeu
SHD_NOW = {
    ("asia", "bic"): 1,
    ("asia", "bdeu"): 9,
    ("sachs", "bic"): 3,
    ("sachs", "bdeu"): 9,
    ("child", "bic"): 6,
    ("child", "bdeu"): 3,
}


@pytest.mark.parametrize("net, n", [("asia", 2000), ("sachs", 2000), ("child", 1000)])
@pytest.mark.parametrize("score", ["bic", "bdeu"])
def test_same_or_better_score_than_pgmpy_hill_climb(pgmpy, net: str, n: int, score: str) -> None:
    estimators, frame = pgmpy
    true, x = sample(net, n)
    df, sn = frame(true, x)
    theirs = estimators.BIC(df, state_names=sn) if score == "bic" else estimators.BDeu(df, state_names=sn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dag = estimators.HillClimbSearch(df, state_names=sn).estimate(
            scoring_method=theirs, show_progress=False
        )
    ours = learn_structure(x, states(true), score=score, restarts=20)
    # pgmpy's search visits candidate edges in hash order, so its result varies from process to
    # process; ours is deterministic and must match or beat it to within 1e-4 of the score
    assert network_score(ours, x, score) >= theirs.score(dag) - 1e-4 * abs(theirs.score(dag))
    # pgmpy's distance to the true graph varies from run to run (3 to 9 seen for sachs BDeu), so our
    # (deterministic) distance is held to what it is now: a regression bound, within the pgmpy range
    assert structural_hamming_distance(true, ours) <= SHD_NOW[(net, score)]


def test_recovers_asia_from_ten_thousand_samples() -> None:
    true, x = sample("asia", 10_000)
    learned = learn_structure(x, states(true))
    assert structural_hamming_distance(true, learned) <= 2
    assert learned.log_prob(x).mean() > true.log_prob(x).mean() - 0.01  # fitted CPDs by counting


def tree_log_likelihood(x: torch.Tensor, cards: list[int], edges: list[tuple[int, int]]) -> float:
    parents = [[] for _ in cards]
    for p, c in edges:
        parents[c].append(p)
    return FamilyScores(x, cards, "ll").total(parents)


def all_trees(n: int):
    """Every labelled tree on n nodes, from its Prüfer sequence, as undirected edges."""
    for seq in itertools.product(range(n), repeat=n - 2):
        degree = [1] * n
        for s in seq:
            degree[s] += 1
        edges = []
        for s in seq:
            leaf = min(i for i in range(n) if degree[i] == 1)
            edges.append((leaf, s))
            degree[leaf] -= 1
            degree[s] -= 1
        u, v = (i for i in range(n) if degree[i] == 1)
        edges.append((u, v))
        yield edges


def orient(edges: list[tuple[int, int]], n: int, root: int = 0) -> list[tuple[int, int]]:
    adj = {i: set() for i in range(n)}
    for u, v in edges:
        adj[u].add(v)
        adj[v].add(u)
    out, seen, stack = [], {root}, [root]
    while stack:
        u = stack.pop()
        for v in sorted(adj[u] - seen):
            seen.add(v)
            out.append((u, v))
            stack.append(v)
    return out


def test_chow_liu_is_the_best_tree_by_brute_force() -> None:
    bn = BayesianNetwork(
        [("a", 2), ("b", 3), ("c", 2), ("d", 2), ("e", 3)],
        [("a", "b"), ("a", "c"), ("b", "d"), ("d", "e"), ("c", "e")],
        seed=1,
    )
    x = bn.sample(3000, generator=torch.Generator().manual_seed(0))
    cards = bn.cardinalities
    trees = list(all_trees(5))
    assert len(trees) == 5**3  # Cayley
    best = max(tree_log_likelihood(x, cards, orient(t, 5)) for t in trees)
    cl = chow_liu_tree(x, cards)
    assert len(cl) == 4 and find_cycle([[p for p, c in cl if c == i] for i in range(5)]) is None
    assert tree_log_likelihood(x, cards, cl) == pytest.approx(best, abs=1e-7)
    for root in range(5):  # every root: the same skeleton and likelihood (Markov equivalent)
        rooted = chow_liu_tree(x, cards, root=root)
        assert {frozenset(e) for e in rooted} == {frozenset(e) for e in cl}
        assert all(c != root for _, c in rooted)


def test_chow_liu_matches_pgmpy_tree_search(pgmpy) -> None:
    estimators, frame = pgmpy
    true, x = sample("sachs", 3000)
    df, _ = frame(true, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dag = estimators.TreeSearch(df, root_node=true.names[0]).estimate(show_progress=False)
    ours = learn_structure(x, states(true), method="chow-liu")
    assert {frozenset(e) for e in ours.edges} == {frozenset(e) for e in dag.edges()}
    assert set(ours.edges) == set(dag.edges())  # same root, same orientation


def test_structural_hamming_distance_counts_each_difference_once() -> None:
    true = [("a", "b"), ("b", "c"), ("c", "d")]
    learned = [("b", "a"), ("b", "c"), ("a", "d")]  # one reversed, one missing, one extra
    d = edge_differences(true, learned)
    assert (d["reversed"], d["missing"], d["extra"], d["shd"]) == (1, 1, 1, 3)
    assert d["edges"]["reversed"] == [("a", "b")]
    assert structural_hamming_distance(true, true) == 0
    assert structural_hamming_distance(true, []) == 3


def test_learned_network_writes_and_reads_back_as_bif(tmp_path: Path) -> None:
    true, x = sample("asia", 1000)
    learned = learn_structure(x, method="chow-liu", root="x2")  # no variables: x0.., states from data
    assert learned.names[:2] == ["x0", "x1"] and all(c != "x2" for _, c in learned.edges)
    write_bif(learned, tmp_path / "l.bif")
    assert read_bif(tmp_path / "l.bif").identical(learned)


@pytest.mark.parametrize(
    "kwargs, data, message",
    [
        ({"method": "pc"}, None, "unknown structure learning method"),
        ({"score": "aic"}, None, "unknown structure score"),
        ({}, torch.tensor([[0, -1], [1, 0]]), "missing values"),
        ({"max_indegree": -1}, None, "max_indegree"),
        ({"method": "chow-liu", "root": "nope"}, None, "unknown variable"),
    ],
)
def test_clear_errors(kwargs: dict, data: torch.Tensor | None, message: str) -> None:
    x = torch.tensor([[0, 1], [1, 0], [1, 1]]) if data is None else data
    with pytest.raises(ChainruleError, match=message):
        learn_structure(x, **kwargs)
