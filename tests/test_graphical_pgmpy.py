"""Bayesian networks against pgmpy on five bnlearn networks: parsing, parameter counts, exact
marginals and conditionals (to 1e-9), and the most probable explanation.

pgmpy reads the same BIF files with its own parser, so a mistake in our reader (row order, parent
order, state order) shows up as a disagreement here rather than cancelling out.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from chainrule.graphical import BayesianNetwork, enumerate_states, read_bif, write_bif
from chainrule.graphical.bayesian_network import REPLAN_COST
from chainrule.graphical.random_queries import random_queries

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        from pgmpy.inference import VariableElimination
        from pgmpy.readwrite import BIFReader
    except ImportError as e:  # a loud failure, not a skip: these tests are the reference check
        raise ImportError("these tests need pgmpy: pip install -e '.[test]'") from e

DATA = Path(__file__).parent / "data" / "bif"
NETWORKS = ["asia", "sachs", "child", "alarm", "insurance"]
FREE_PARAMETERS = {"asia": 18, "sachs": 178, "child": 230, "alarm": 509, "insurance": 1008}
TOLERANCE = 1e-9


@functools.cache
def ours(name: str) -> BayesianNetwork:
    return read_bif(DATA / f"{name}.bif.gz")


@functools.cache
def theirs(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BIFReader(string=gzip.decompress((DATA / f"{name}.bif.gz").read_bytes()).decode()).get_model()


def pgmpy_table(ve, targets: list[str], evidence: dict[str, str]) -> np.ndarray:
    phi = ve.query(targets, evidence=evidence or None, show_progress=False)
    for t in targets:
        assert phi.state_names[t] == ve.model.get_cpds(t).state_names[t]
    return np.transpose(phi.values, [phi.variables.index(t) for t in targets])


def pgmpy_free_parameters(model) -> int:
    return sum(
        (c.cardinality[0] - 1) * math.prod(int(k) for k in c.cardinality[1:]) for c in model.get_cpds()
    )


@pytest.mark.parametrize("name", NETWORKS)
def test_reads_the_same_network_as_pgmpy(name: str) -> None:
    bn, model = ours(name), theirs(name)
    assert sorted(bn.names) == sorted(model.nodes())
    assert sorted(bn.edges) == sorted(model.edges())
    for v in bn.names:
        cpd = model.get_cpds(v)
        assert cpd.state_names[v] == bn.state_names[v]
        parents = list(cpd.variables[1:])
        assert sorted(parents) == sorted(bn.parents(v))
        for p in parents:
            assert cpd.state_names[p] == bn.state_names[p]
        # ours: (our parent order..., own); pgmpy: (own, its parent order...): compare exactly.
        perm = [len(parents)] + [bn.parents(v).index(p) for p in parents]
        np.testing.assert_array_equal(bn.cpd(v).permute(perm).numpy(), cpd.values)


@pytest.mark.parametrize("name", NETWORKS)
def test_free_parameters_match_pgmpy_and_bnlearn(name: str) -> None:
    assert ours(name).num_parameters() == pgmpy_free_parameters(theirs(name)) == FREE_PARAMETERS[name]


@pytest.mark.parametrize("seed, name", enumerate(NETWORKS))
def test_marginals_and_conditionals_match_pgmpy(seed: int, name: str) -> None:
    bn = ours(name)
    ve = VariableElimination(theirs(name))
    queries = random_queries(bn, 50, seed)
    assert sum(1 for _, e in queries if not e) >= 3 and sum(1 for _, e in queries if len(e) >= 3) >= 10
    worst = 0.0
    for targets, evidence in queries:
        mine = bn.query(targets, evidence)
        assert mine.dtype == torch.float64
        assert tuple(mine.shape) == tuple(len(bn.state_names[t]) for t in targets)
        ref = pgmpy_table(ve, targets, evidence)
        worst = max(worst, float(np.abs(mine.numpy() - ref).max()))
        assert worst <= TOLERANCE, (targets, evidence)
        assert abs(float(mine.sum()) - 1) < 1e-12


@pytest.mark.parametrize("order", ["min-fill", "min-degree"])
def test_per_query_elimination_orders_agree(order: str) -> None:
    bn = read_bif(DATA / "alarm.bif.gz")
    reference = ours("alarm")
    bn.elimination_order = order
    for targets, evidence in random_queries(bn, 20, 7):
        torch.testing.assert_close(
            bn.query(targets, evidence), reference.query(targets, evidence), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("name", ["alarm", "insurance"])
def test_auto_order_is_never_much_worse_than_either(name: str) -> None:
    """ "auto" uses the global min-fill order unless its plan looks costly, then the cheaper one."""
    nets = {}
    for mode in ["auto", "global", "min-fill"]:
        nets[mode] = read_bif(DATA / f"{name}.bif.gz")
        nets[mode].elimination_order = mode
    for targets, evidence in random_queries(nets["auto"], 50, 11):
        cost = {mode: bn.query_plan(targets, evidence).cost for mode, bn in nets.items()}
        assert cost["auto"] <= max(REPLAN_COST, min(cost["global"], cost["min-fill"]))
        assert cost["auto"] <= cost["global"]


def _joint_log_prob(bn: BayesianNetwork, assignment: dict[str, str]) -> float:
    return float(bn.log_prob(bn.encode(assignment))[0])


def test_mpe_matches_pgmpy_map_query_on_asia() -> None:
    bn = ours("asia")
    ve = VariableElimination(theirs("asia"))
    every = enumerate_states(bn.cardinalities)
    every_lp = bn.log_prob(every)
    rng = random.Random(3)
    rows = bn.sample(12, generator=torch.Generator().manual_seed(3)).tolist()
    evidences = [{}] + [
        {bn.names[i]: bn.state_names[bn.names[i]][row[i]] for i in rng.sample(range(8), rng.randint(1, 4))}
        for row in rows
    ]
    for evidence in evidences:
        mpe, logp = bn.mpe(evidence)
        assert all(mpe[k] == v for k, v in evidence.items())
        assert logp == pytest.approx(_joint_log_prob(bn, mpe), abs=1e-12)
        # brute force over all 256 states consistent with the evidence
        consistent = torch.ones(len(every), dtype=torch.bool)
        for k, v in evidence.items():
            consistent &= every[:, bn.names.index(k)] == bn.state_names[k].index(v)
        best = float(every_lp[consistent].max())
        assert logp == pytest.approx(best, abs=1e-12)
        free = [v for v in bn.names if v not in evidence]
        theirs_map = ve.map_query(variables=free, evidence=evidence or None, show_progress=False)
        assert _joint_log_prob(bn, {**theirs_map, **evidence}) == pytest.approx(logp, abs=1e-12)
        ties = int((every_lp[consistent] >= best - 1e-12).sum())
        if ties == 1:
            assert {k: mpe[k] for k in free} == dict(theirs_map)


def test_pgmpy_reads_what_we_write(tmp_path: Path) -> None:
    """Our BIF output is valid for another reader and means the same network."""
    bn = ours("asia")
    path = write_bif(bn, tmp_path / "asia.bif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BIFReader(str(path)).get_model()
    ve = VariableElimination(model)
    for targets in itertools.combinations(["tub", "lung", "either"], 2):
        ref = pgmpy_table(ve, list(targets), {"xray": "yes", "asia": "yes"})
        np.testing.assert_allclose(
            bn.query(list(targets), {"xray": "yes", "asia": "yes"}).numpy(), ref, atol=1e-12
        )
