"""Bounded Bayesian-network inference: CPD size limits, elimination step limits, joint-query
limits, bounded decompression, and a node with 200 children (past einsum's operand limit)
answered exactly as pgmpy answers it."""

from __future__ import annotations

import gzip
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from chainrule.decompress import gunzip_bounded
from chainrule.errors import ChainruleError
from chainrule.graphical import BayesianNetwork, format_bif, parse_bif, read_bif

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pgmpy.inference import VariableElimination
    from pgmpy.readwrite import BIFReader

CHILDREN = 200


def wide_network(children: int = CHILDREN, seed: int = 0) -> BayesianNetwork:
    """A binary hub with `children` binary children, each child also feeding one grandchild
    (so elimination meets a bucket of `children` factors on the hub)."""
    variables = [("hub", 2)] + [(f"c{i}", 2) for i in range(children)] + [("g", 3)]
    edges = [("hub", f"c{i}") for i in range(children)] + [("c0", "g"), ("c1", "g")]
    return BayesianNetwork(variables, edges, seed=seed)


def pgmpy_of(bn: BayesianNetwork):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BIFReader(string=format_bif(bn)).get_model()


@pytest.fixture(scope="module")
def pair():
    bn = wide_network()
    return bn, pgmpy_of(bn)


def test_wide_node_queries_match_pgmpy(pair) -> None:
    bn, theirs = pair
    ve = VariableElimination(theirs)
    rng = np.random.default_rng(0)
    evidence = {f"c{i}": str(int(rng.integers(2))) for i in range(2, CHILDREN)}  # 198 observed children
    for targets, ev in [(["hub"], evidence), (["g"], evidence), (["hub", "c0"], {}), (["c5"], {"g": "1"})]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phi = ve.query(targets, evidence=ev or None, show_progress=False)
        expected = np.transpose(phi.values, [phi.variables.index(t) for t in targets])
        got = bn.query(targets, ev).numpy()
        assert np.allclose(got, expected, rtol=0, atol=1e-9), targets


def test_wide_node_mpe_is_the_exact_optimum(pair) -> None:
    """pgmpy's map_query builds the joint over all 203 variables here (out of memory), so the
    optimum is worked out by hand: given the hub, each child c2.. picks its own best state, and
    (c0, c1) are chosen jointly with the observed grandchild."""
    bn, _ = pair
    ev = {"g": "2"}
    states, logp = bn.mpe(ev)
    t = [cpd.numpy() for cpd in bn._tables]  # hub, c0..c199, g
    best = -math.inf
    for h in range(2):
        rest = sum(math.log(t[1 + i][h].max()) for i in range(2, CHILDREN))
        pair_best = max(
            math.log(t[1][h, a] * t[2][h, b] * t[-1][a, b, 2]) for a in range(2) for b in range(2)
        )
        best = max(best, math.log(t[0][h]) + rest + pair_best)
    assert logp == pytest.approx(best, abs=1e-9)
    assert bn.log_prob(bn.encode(states)).item() == pytest.approx(logp, abs=1e-9)


def test_wide_node_missing_log_prob_matches_pgmpy(pair) -> None:
    bn, theirs = pair
    g = torch.Generator().manual_seed(1)
    x = bn.sample(20, generator=g)
    x[:, 0] = -1  # the hub missing: its bucket holds all 200 children
    x[:10, 1] = -1
    got = bn.log_prob(x)
    ve = VariableElimination(theirs)
    for row, lp in zip(bn.states_of(x)[:4] + bn.states_of(x)[10:14], got[:4].tolist() + got[10:14].tolist()):
        free = [v for v in bn.names if v not in row]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # P(observed) = P(observed minus one child) * P(that child | the rest)
            first = next(iter(row))
            rest = {k: v for k, v in row.items() if k != first}
            phi = ve.query([first], evidence=rest, show_progress=False)
        cond = phi.values[phi.state_names[first].index(row[first])]
        lp_rest = bn.log_prob(bn.encode(rest)).item()
        assert lp == pytest.approx(lp_rest + math.log(cond), abs=1e-8), free


def test_no_step_loops_over_more_than_its_pairs() -> None:
    bn = wide_network()
    plan = bn.query_plan(["hub"], [f"c{i}" for i in range(2, CHILDREN)])
    assert max(len(s.operands) for s in plan.steps) <= 16
    assert plan.max_factor_size(bn.cardinalities) <= 2 * 2 * 3


def test_cpd_size_limit_names_the_node() -> None:
    variables = [(f"p{i}", 2) for i in range(40)] + [("x", 2)]
    with pytest.raises(ChainruleError, match=r"CPD of 'x' \(40 parents\) would hold 2,199,023,255,552 cells"):
        BayesianNetwork(variables, [(f"p{i}", "x") for i in range(40)])
    parents = ", ".join(f"p{i}" for i in range(24))
    decl = "".join(f"variable p{i} {{ type discrete [ 2 ] {{ a, b }}; }}\n" for i in range(24))
    text = f"network n {{}}\n{decl}variable x {{ type discrete [ 2 ] {{ a, b }}; }}\n"
    text += f"probability ( x | {parents} ) {{ default 0.5, 0.5; }}\n"
    with pytest.raises(
        ChainruleError, match=r"line \d+: the CPD of 'x' \(24 parents\) would hold 33,554,432"
    ):
        parse_bif(text)


def test_step_limit_names_the_induced_width(monkeypatch) -> None:
    n = 12  # a chain of v-structures: a clique of 12 binary parents once moralised
    variables = [(f"p{i}", 2) for i in range(n)] + [("x", 2)]
    bn = BayesianNetwork(variables, [(f"p{i}", "x") for i in range(n)], seed=0)
    monkeypatch.setenv("CHAINRULE_MAX_STEP_CELLS", "1000")
    with pytest.raises(ChainruleError, match=r"induced width \d+: one step would hold [\d,]+ cells"):
        bn.mpe()


def test_joint_query_over_the_limit_is_refused() -> None:
    bn = BayesianNetwork([(f"v{i}", 2) for i in range(30)], [(f"v{i}", f"v{i + 1}") for i in range(29)])
    with pytest.raises(ChainruleError, match=r"joint table of 30 target variables would hold 1,073,741,824"):
        bn.query([f"v{i}" for i in range(30)])


def test_gzip_bomb_is_refused(tmp_path) -> None:
    bomb = gzip.compress(b"\0" * (5 << 20))
    with pytest.raises(ChainruleError, match="decompresses to more than 1,000,000 bytes"):
        gunzip_bounded(bomb, "bomb.gz", limit=1_000_000)
    path = tmp_path / "bomb.bif.gz"
    path.write_bytes(bomb)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("CHAINRULE_MAX_DECOMPRESSED_BYTES", "1000")
        with pytest.raises(ChainruleError, match="bomb.bif.gz: decompresses to more than"):
            read_bif(path)


def test_the_global_order_is_never_costlier_than_min_fill() -> None:
    """`best_elimination_order` keeps the cheaper of min-fill and weighted min-fill, so on every
    shipped network its total clique cells are at most min-fill's (and both are valid orders)."""
    from chainrule.graphical.elimination_order import best_elimination_order, elimination_order, order_cost

    for path in sorted((Path(__file__).parent / "data" / "bif").glob("*.bif.gz")):
        bn = read_bif(path)
        n = len(bn.cardinalities)
        adjacency = {v: 0 for v in range(n)}
        for scope in bn._scopes:
            mask = sum(1 << v for v in scope)
            for v in scope:
                adjacency[v] |= mask
        everything = (1 << n) - 1
        best = best_elimination_order(adjacency, everything, bn.cardinalities)
        plain = elimination_order(adjacency, everything, bn.cardinalities, "min-fill")
        weighted = elimination_order(adjacency, everything, bn.cardinalities, "weighted-min-fill")
        assert sorted(best) == sorted(weighted) == list(range(n)), path.name
        assert order_cost(adjacency, best, bn.cardinalities) <= order_cost(adjacency, plain, bn.cardinalities)
