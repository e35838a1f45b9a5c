"""Bad Bayesian-network input gets a ChainruleError with a message that names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical import BayesianNetwork, FullJointModel, MarkovChainModel, read_bif
from chainrule.graphical.dag import find_cycle, topological_order

DATA = Path(__file__).parent / "data" / "bif"
VARS = {"rain": ["no", "yes"], "sprinkler": ["off", "on"], "wet": ["dry", "wet"]}
EDGES = [("rain", "wet"), ("sprinkler", "wet")]


def cpds(**override) -> dict:
    base = {
        "rain": torch.tensor([0.8, 0.2]),
        "sprinkler": torch.tensor([0.6, 0.4]),
        "wet": torch.tensor([[[1.0, 0.0], [0.1, 0.9]], [[0.2, 0.8], [0.01, 0.99]]]),
    }
    return {**base, **override}


@pytest.fixture(scope="module")
def asia() -> BayesianNetwork:
    return read_bif(DATA / "asia.bif.gz")


def test_the_valid_network_builds() -> None:
    bn = BayesianNetwork(VARS, EDGES, cpds())
    assert bn.parents("wet") == ["rain", "sprinkler"] and bn.num_parameters() == 6
    assert bn.query("rain", {"wet": "wet"})[1].item() == pytest.approx(
        0.2 * (0.6 * 0.8 + 0.4 * 0.99) / (0.8 * 0.4 * 0.9 + 0.2 * (0.6 * 0.8 + 0.4 * 0.99))
    )


def test_cyclic_graph() -> None:
    edges = [*EDGES, ("wet", "rain")]
    table = torch.full((2, 2), 0.5)
    with pytest.raises(ChainruleError, match=r"directed cycle: (rain -> wet -> rain|wet -> rain -> wet)"):
        BayesianNetwork(VARS, edges, cpds(rain=table))
    with pytest.raises(ChainruleError, match="cycle: rain -> rain"):
        BayesianNetwork(VARS, [("rain", "rain")], cpds())
    # parents [[1], [2], [0]]: edges 1 -> 0, 2 -> 1, 0 -> 2
    assert find_cycle([[1], [2], [0]]) in ([0, 2, 1, 0], [2, 1, 0, 2], [1, 0, 2, 1])
    assert find_cycle([[], [0], [0, 1]]) is None
    assert topological_order([[], [0], [0, 1]]) == [0, 1, 2]


def test_cpd_rows_must_sum_to_one() -> None:
    bad = cpds()["wet"].clone()
    bad[1, 0] = torch.tensor([0.3, 0.8])
    with pytest.raises(
        ChainruleError, match=r"'wet': the row given \(rain=yes, sprinkler=off\) sums to 1\.1\d*, not 1"
    ):
        BayesianNetwork(VARS, EDGES, cpds(wet=bad))
    BayesianNetwork(
        VARS, EDGES, cpds(rain=torch.tensor([0.8, 0.2 + 5e-7], dtype=torch.float64))
    )  # within 1e-6


def test_cpd_negative_entries_and_nan() -> None:
    with pytest.raises(ChainruleError, match="negative"):
        BayesianNetwork(VARS, EDGES, cpds(rain=torch.tensor([1.2, -0.2])))
    with pytest.raises(ChainruleError, match="NaN"):
        BayesianNetwork(VARS, EDGES, cpds(rain=torch.tensor([float("nan"), 0.5])))


def test_cpd_shape_must_match_cardinalities() -> None:
    with pytest.raises(ChainruleError, match=r"CPD of 'wet' has shape \(2, 2\); expected \(2, 2, 2\)"):
        BayesianNetwork(VARS, EDGES, cpds(wet=torch.full((2, 2), 0.5)))
    with pytest.raises(ChainruleError, match="no CPD given for variable"):
        BayesianNetwork(VARS, EDGES, {"rain": cpds()["rain"]})
    with pytest.raises(ChainruleError, match="unknown variable"):
        BayesianNetwork(VARS, EDGES, cpds(hail=torch.tensor([1.0])))
    with pytest.raises(ChainruleError, match="unknown variable 'snow' in edge"):
        BayesianNetwork(VARS, [("snow", "wet")], cpds())
    with pytest.raises(ChainruleError, match="repeats state"):
        BayesianNetwork({"a": ["x", "x"]}, [], {"a": [0.5, 0.5]})


def test_unknown_variable_or_state_in_evidence(asia: BayesianNetwork) -> None:
    with pytest.raises(ChainruleError, match="unknown variable 'smoking' in evidence; variables: asia, tub"):
        asia.query("lung", {"smoking": "yes"})
    with pytest.raises(
        ChainruleError, match="unknown state 'often' for variable 'smoke' in evidence; states: yes, no"
    ):
        asia.query("lung", {"smoke": "often"})
    with pytest.raises(ChainruleError, match="out of range"):
        asia.query("lung", {"smoke": 2})
    with pytest.raises(ChainruleError, match="unknown variable 'lungs' in targets"):
        asia.query("lungs")
    with pytest.raises(ChainruleError, match="both targets and evidence"):
        asia.query(["lung", "smoke"], {"smoke": "yes"})
    with pytest.raises(ChainruleError, match="at least one target"):
        asia.query([])


def test_impossible_evidence(asia: BayesianNetwork) -> None:
    """P(tub | lung=yes, either=no) is undefined: `either` is lung OR tub."""
    with pytest.raises(ChainruleError, match="probability zero"):
        asia.query("tub", {"lung": "yes", "either": "no"})
    with pytest.raises(ChainruleError, match="probability zero"):
        asia.mpe({"tub": "yes", "either": "no"})
    # Evidence that the targets do not depend on is pruned (as pgmpy does); P(evidence) tells.
    assert asia.query("xray", {"lung": "yes", "either": "no"})[0].item() == pytest.approx(0.05)
    assert asia.log_prob(asia.encode({"lung": "yes", "either": "no"})).item() == float("-inf")


def test_bad_data(asia: BayesianNetwork) -> None:
    with pytest.raises(ChainruleError, match=r"shape \(2, 7\); expected \(batch, 8\)"):
        asia.log_prob(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ChainruleError, match=r"x\[1, 3\] = 2 is not a state of lung"):
        asia.log_prob(torch.tensor([[0] * 8, [0, 0, 0, 2, 0, 0, 0, 0]]))
    with pytest.raises(ChainruleError, match="missing values are not allowed"):
        asia.fit(torch.full((3, 8), -1))
    with pytest.raises(ChainruleError, match="integer state codes"):
        asia.log_prob(torch.full((1, 8), 0.5))
    with pytest.raises(ChainruleError, match="torch.Tensor"):
        asia.log_prob([[0] * 8])
    with pytest.raises(ChainruleError, match="alpha"):
        asia.fit(torch.zeros(3, 8, dtype=torch.long), alpha=-1)


def test_tabular_model_arguments() -> None:
    with pytest.raises(ChainruleError, match="too large|limit"):
        FullJointModel([10] * 10)
    with pytest.raises(ChainruleError, match="sums to"):
        FullJointModel([2, 2], torch.full((2, 2), 0.3))
    with pytest.raises(ChainruleError, match="transition tables"):
        MarkovChainModel([2, 2, 2], transitions=[torch.full((2, 2), 0.5)])
    with pytest.raises(ChainruleError, match="positive integers"):
        MarkovChainModel([2, 0])
