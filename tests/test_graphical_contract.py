"""Bayesian networks and tabular models keep the one model contract (issue 19, item 4)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical import BayesianNetwork, FullJointModel, IndependentModel, MarkovChainModel, read_bif
from chainrule.graphical.tabular import enumerate_states
from chainrule.models.base import MODEL_REGISTRY, build_model
from chainrule.persistence import load, save

CLASSES = {
    "bayesian-network": BayesianNetwork,
    "independent": IndependentModel,
    "markov-chain": MarkovChainModel,
    "full-joint": FullJointModel,
}
BIF = Path(__file__).parent / "data" / "bif"


def _tiny(name: str):
    return build_model(name, **CLASSES[name].tiny_config())


@pytest.mark.parametrize("name", CLASSES)
def test_registered_with_declared_capabilities(name: str) -> None:
    model = _tiny(name)
    assert MODEL_REGISTRY[name] is CLASSES[name]
    caps = model.capabilities()
    assert caps["value_type"] == "categorical" and caps["num_values"] == max(model.cardinalities)
    assert caps["event_shape"] == [len(model.cardinalities)] and caps["image_shape"] is None
    assert caps["exact_log_prob"] and caps["exact_completion"] and caps["conditioned_on"] == "nothing"
    assert 3 <= len(model.cardinalities) <= 4


@pytest.mark.parametrize("name", CLASSES)
def test_tiny_model_normalised_and_not_uniform(name: str) -> None:
    model = _tiny(name)
    lp = model.log_prob(enumerate_states(model.cardinalities).double())  # float codes are accepted
    assert math.isclose(torch.logsumexp(lp, 0).item(), 0.0, abs_tol=1e-12)
    assert lp.max() - lp.min() > 0.1


@pytest.mark.parametrize("name", CLASSES)
def test_save_load_round_trip_bit_for_bit(name: str, tmp_path: Path) -> None:
    model = _tiny(name)
    save(model, tmp_path)
    back = load(tmp_path)
    assert type(back) is type(model) and back.config() == model.config()
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = enumerate_states(model.cardinalities)
    assert torch.equal(model.log_prob(x), back.log_prob(x))


def test_bif_network_round_trips_through_persistence(tmp_path: Path) -> None:
    asia = read_bif(BIF / "asia.bif.gz")
    save(asia, tmp_path)
    back = load(tmp_path)
    assert back.identical(asia) and back.name == asia.name


@pytest.mark.parametrize("name", CLASSES)
def test_cond_is_refused(name: str) -> None:
    model = _tiny(name)
    with pytest.raises(ChainruleError, match="conditioned on nothing"):
        model.log_prob(torch.zeros(1, len(model.cardinalities), dtype=torch.long), cond=torch.zeros(1))
    with pytest.raises(ChainruleError, match="conditioned on nothing"):
        model.sample(2, torch.zeros(2))


@pytest.mark.parametrize("name", CLASSES)
def test_completion_is_the_exact_conditional(name: str) -> None:
    """Completed rows follow p(x_hidden | x_observed) computed by enumeration (chi-square-ish)."""
    model = _tiny(name)
    cards = model.cardinalities
    every = enumerate_states(cards)
    p = model.log_prob(every).exp()
    given = every[int(p.argmax())].clone()
    mask = torch.zeros(len(cards), dtype=torch.bool)
    mask[-1] = True  # observe the last variable (a descendant of every other in the tiny networks)
    n = 20_000
    out = model.sample(n, given=given.expand(n, -1), mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, -1], given[-1].expand(n))
    consistent = every[:, -1] == given[-1]
    expected = p[consistent] / p[consistent].sum()
    flat = torch.zeros(n, dtype=torch.long)
    for j, k in enumerate(cards):
        flat = flat * k + out[:, j]
    index = torch.zeros(len(every), dtype=torch.long)
    index[consistent.nonzero().squeeze(1)] = torch.arange(int(consistent.sum()))
    freq = torch.bincount(index[flat], minlength=len(expected)).double() / n
    assert (freq - expected).abs().max() < 4 * math.sqrt(0.25 / n)


def test_completion_on_alarm_matches_query() -> None:
    alarm = read_bif(BIF / "alarm.bif.gz")
    evidence = {"HRBP": "HIGH", "BP": "LOW"}
    row = alarm.encode(evidence)
    mask = row[0] >= 0
    n = 4000
    out = alarm.sample(n, given=row.expand(n, -1), mask=mask, generator=torch.Generator().manual_seed(1))
    exact = alarm.query("HYPOVOLEMIA", evidence)
    freq = torch.bincount(out[:, alarm.names.index("HYPOVOLEMIA")], minlength=2).double() / n
    assert (freq - exact).abs().max() < 4 * math.sqrt(0.25 / n)


def test_completion_refuses_impossible_rows() -> None:
    bn = BayesianNetwork({"a": 2, "b": 2}, [("a", "b")], {"a": [1.0, 0.0], "b": [[0.5, 0.5], [0.5, 0.5]]})
    with pytest.raises(ChainruleError, match="probability zero"):
        bn.sample(1, given=torch.tensor([[1, 0]]), mask=torch.tensor([True, False]))


def test_evaluate_nll_works_on_a_network() -> None:
    from chainrule.evaluation import evaluate_nll

    asia = read_bif(BIF / "asia.bif.gz")
    x = asia.sample(500, generator=torch.Generator().manual_seed(0))
    report = evaluate_nll(asia, x.float(), batch_size=128)
    assert report.nll_nats == pytest.approx(-asia.log_prob(x).mean().item(), rel=1e-12)
    assert report.dim == len(asia.names)


def test_module_machinery_keeps_working() -> None:
    """eval(), to(dtype), children() and a loaded state dict refresh the derived tables."""
    bn = _tiny("bayesian-network")
    assert bn.eval() is bn and list(bn.children()) == [] and bn.children("c") == ["d"]
    other = _tiny("bayesian-network")
    other.load_state_dict({k: torch.full_like(v, 1.0 / v.shape[-1]) for k, v in bn.state_dict().items()})
    x = enumerate_states(bn.cardinalities)
    assert torch.allclose(other.log_prob(x), torch.full((len(x),), -math.log(len(x)), dtype=torch.float64))
