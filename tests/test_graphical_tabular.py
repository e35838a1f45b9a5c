"""Tabular models (full joint, independent, Markov chain, Bayesian network): normalisation by
enumeration, free-parameter formulas, maximum likelihood by counting, and exact likelihoods with
missing values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.graphical import (
    BayesianNetwork,
    FullJointModel,
    IndependentModel,
    MarkovChainModel,
    enumerate_states,
    read_bif,
)

DATA = Path(__file__).parent / "data" / "bif"


def _simplex(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Random conditional tables (rows over the last axis sum to 1), away from uniform."""
    t = torch.rand(shape, generator=g, dtype=torch.float64) ** 3 + 1e-3
    return t / t.sum(-1, keepdim=True)


def random_models(cards: list[int], seed: int = 0) -> dict[str, object]:
    g = torch.Generator().manual_seed(seed)
    n = len(cards)
    names = [f"v{i}" for i in range(n)]
    joint = _simplex((math.prod(cards),), g).reshape(cards)
    # a small DAG: v0 -> v2 <- v1, v2 -> v3, v0 -> v3 (for n = 4)
    edges = [("v0", "v2"), ("v1", "v2"), ("v2", "v3"), ("v0", "v3")]
    parents = {v: [p for p, c in edges if c == v] for v in names}
    cpds = {
        v: _simplex(tuple(cards[names.index(p)] for p in parents[v]) + (cards[i],), g)
        for i, v in enumerate(names)
    }
    return {
        "full-joint": FullJointModel(cards, joint),
        "independent": IndependentModel(cards, [_simplex((k,), g) for k in cards]),
        "markov-chain": MarkovChainModel(
            cards, _simplex((cards[0],), g), [_simplex((cards[i - 1], cards[i]), g) for i in range(1, n)]
        ),
        "bayesian-network": BayesianNetwork(dict(zip(names, cards)), edges, cpds),
    }


CARDS = [2, 3, 2, 4]
MODELS = random_models(CARDS)


@pytest.mark.parametrize("name", list(MODELS))
def test_log_prob_normalises(name: str) -> None:
    model = MODELS[name]
    lp = model.log_prob(enumerate_states(CARDS))
    assert lp.shape == (math.prod(CARDS),) and lp.dtype == torch.float64
    assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-12)
    assert lp.std() > 0.1  # not uniform: the check above is not trivially true


def test_free_parameter_formulas() -> None:
    for k, n in [(2, 1), (2, 8), (3, 4), (5, 3)]:
        cards = [k] * n
        assert FullJointModel(cards).num_parameters() == k**n - 1
        assert IndependentModel(cards).num_parameters() == n * (k - 1)
        assert MarkovChainModel(cards).num_parameters() == (k - 1) + (n - 1) * k * (k - 1)
    assert FullJointModel([2, 3, 4]).num_parameters() == 23
    assert IndependentModel([2, 3, 4]).num_parameters() == 1 + 2 + 3
    assert MarkovChainModel([2, 3, 4]).num_parameters() == 1 + 2 * 2 + 3 * 3
    bn = MODELS["bayesian-network"]  # v0, v1 roots; v2 | v0, v1; v3 | v2, v0
    assert bn.num_parameters() == 1 + 2 + (2 * 3) * 1 + (2 * 2) * 3


def test_parameter_table_of_alarm() -> None:
    bn = read_bif(DATA / "alarm.bif.gz")
    counts = bn.parameter_counts()
    assert counts["bayesian_network"] == 509
    assert counts["full_joint"] == math.prod(bn.cardinalities) - 1
    assert counts["independent"] == sum(k - 1 for k in bn.cardinalities)
    assert counts["markov_chain"] == MarkovChainModel(bn.cardinalities).num_parameters()
    table = bn.parameter_table()
    assert "bayesian network" in table and f"{counts['full_joint']:,}" in table


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_is_counting(name: str) -> None:
    """alpha = 0 gives empirical frequencies; alpha > 0 adds pseudo-counts."""
    g = torch.Generator().manual_seed(1)
    data = MODELS[name].sample(500, generator=g)
    fresh = random_models(CARDS, seed=5)[name]
    fitted = fresh.fit(data, alpha=0.0)
    assert fitted is fresh
    if name == "full-joint":
        counts = torch.zeros(CARDS, dtype=torch.float64)
        for row in data.tolist():
            counts[tuple(row)] += 1
        torch.testing.assert_close(fitted.table, counts / 500)
        smoothed = random_models(CARDS)[name].fit(data, alpha=2.0).table
        torch.testing.assert_close(smoothed, (counts + 2) / (500 + 2 * math.prod(CARDS)))
        return
    for v in fitted.names:  # every CPD row = counts of (parents, v) / counts of parents
        i = fitted.names.index(v)
        cols = [fitted.names.index(p) for p in fitted.parents(v)]
        for pa in enumerate_states([CARDS[c] for c in cols]).tolist():
            sel = torch.ones(len(data), dtype=torch.bool)
            for c, s in zip(cols, pa):
                sel &= data[:, c] == s
            n = int(sel.sum())
            counts = torch.bincount(data[sel, i], minlength=CARDS[i]).double()
            expected = counts / n if n else torch.full((CARDS[i],), 1 / CARDS[i], dtype=torch.float64)
            torch.testing.assert_close(fitted.cpd(v)[tuple(pa)], expected)
            laplace = random_models(CARDS)[name].fit(data, alpha=1.0).cpd(v)[tuple(pa)]
            torch.testing.assert_close(laplace, (counts + 1) / (n + CARDS[i]))


def test_fit_recovers_asia() -> None:
    bn = read_bif(DATA / "asia.bif.gz")
    data = bn.sample(200_000, generator=torch.Generator().manual_seed(0))
    blank = BayesianNetwork(
        bn.state_names,
        bn.edges,
        {v: torch.full_like(bn.cpd(v), 1 / len(bn.state_names[v])) for v in bn.names},
    )
    blank.fit(data, alpha=0.0)
    for v in bn.names:
        torch.testing.assert_close(blank.cpd(v), bn.cpd(v), atol=0.03, rtol=0)
    # the fitted model is at least as likely on its own training data as the true one
    assert blank.log_likelihood(data) >= bn.log_likelihood(data)


def _marginal_by_enumeration(model, row: torch.Tensor, cards: list[int]) -> float:
    hidden = [j for j in range(len(cards)) if row[j] < 0]
    completions = enumerate_states([cards[j] for j in hidden])
    full = row.repeat(len(completions), 1)
    full[:, hidden] = completions
    return torch.logsumexp(model.log_prob(full), 0).item()


@pytest.mark.parametrize("name", ["asia", "small"])
def test_missing_values_are_summed_out(name: str) -> None:
    """log p(observed) with -1 entries == log of the joint summed over the missing variables."""
    if name == "asia":
        model = read_bif(DATA / "asia.bif.gz")
        cards = model.cardinalities
    else:
        model, cards = MODELS["bayesian-network"], CARDS
    g = torch.Generator().manual_seed(2)
    x = model.sample(40, generator=g)
    mask = torch.rand(x.shape, generator=g) < 0.4
    mask[0] = True  # everything missing: log 1 = 0
    mask[1] = False  # complete row
    x[mask] = -1
    lp = model.log_prob(x)
    assert lp[0].item() == pytest.approx(0.0, abs=1e-12)
    for i in range(len(x)):
        assert lp[i].item() == pytest.approx(_marginal_by_enumeration(model, x[i], cards), abs=1e-10)


@pytest.mark.parametrize("name", ["full-joint", "independent", "markov-chain"])
def test_missing_values_in_other_tabular_models(name: str) -> None:
    model = MODELS[name]
    g = torch.Generator().manual_seed(4)
    x = model.sample(30, generator=g)
    x[torch.rand(x.shape, generator=g) < 0.5] = -1
    lp = model.log_prob(x)
    for i in range(len(x)):
        assert lp[i].item() == pytest.approx(_marginal_by_enumeration(model, x[i], CARDS), abs=1e-10)


def test_missing_values_on_alarm_follow_the_chain_rule() -> None:
    """On a network too large to enumerate: log P(e1..ek) == sum_j log P(e_j | e_<j) by queries."""
    alarm = read_bif(DATA / "alarm.bif.gz")
    # alarm.bif's rows sum to 1 only within 1e-7, which the normalised queries would not see
    cpds = {v: t / t.sum(-1, keepdim=True) for v, t in alarm.cpds().items()}
    bn = BayesianNetwork(alarm.state_names, alarm.edges, cpds)
    g = torch.Generator().manual_seed(6)
    x = bn.sample(6, generator=g)
    x[torch.rand(x.shape, generator=g) < 0.6] = -1
    lp = bn.log_prob(x)
    for i, row in enumerate(x.tolist()):
        total, seen = 0.0, {}
        for j, s in enumerate(row):
            if s < 0:
                continue
            total += math.log(bn.query(bn.names[j], seen)[s].item())
            seen[bn.names[j]] = s
        assert lp[i].item() == pytest.approx(total, abs=1e-11)


def test_sampling_is_reproducible() -> None:
    bn = MODELS["bayesian-network"]
    a = bn.sample(100, generator=torch.Generator().manual_seed(9))
    b = bn.sample(100, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b) and a.dtype == torch.long and a.shape == (100, 4)
    with pytest.raises(ChainruleError, match="positive integer"):  # n >= 1, as for every model
        bn.sample(0)
