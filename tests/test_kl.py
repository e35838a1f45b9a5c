"""KL between chainrule models: the Monte Carlo estimate agrees with exact enumeration."""

from __future__ import annotations

import math

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.kl import (
    all_configurations,
    cross_entropy_exact,
    entropy_exact,
    kl_divergence_exact,
    kl_divergence_mc,
)
from chainrule.models import FVSBN, MADE, NADE
from tests.conftest import randomize

PAIRS = {
    "nade-nade": (NADE(8, hidden=5), NADE(8, hidden=5)),
    "fvsbn-made": (FVSBN(8), MADE(8, hidden=[12])),
}


@pytest.mark.parametrize("name", PAIRS)
def test_monte_carlo_kl_within_four_standard_errors(name: str) -> None:
    p, q = (randomize(m.double(), seed=s) for s, m in enumerate(PAIRS[name]))
    exact = kl_divergence_exact(p, q)
    assert exact > 0.1
    est, se = kl_divergence_mc(p, q, 20_000, torch.Generator().manual_seed(0), batch_size=7_000)
    assert abs(est - exact) < 4 * se
    assert se < 0.05 * exact  # and the error bar is informative


def test_exact_identities() -> None:
    p, q = randomize(NADE(6, hidden=3).double(), seed=3), randomize(FVSBN(6).double(), seed=4)
    assert math.isclose(
        cross_entropy_exact(p, q), entropy_exact(p) + kl_divergence_exact(p, q), rel_tol=1e-12
    )
    assert abs(kl_divergence_exact(p, p)) < 1e-12
    assert 0 < entropy_exact(p) < 6 * math.log(2)
    assert all_configurations(3).shape == (8, 3) and all_configurations(2, 3).shape == (9, 2)


def test_errors() -> None:
    with pytest.raises(ChainruleError, match="event shape"):
        kl_divergence_exact(NADE(4, hidden=2), NADE(5, hidden=2))
    with pytest.raises(ChainruleError, match="n must be"):
        kl_divergence_mc(NADE(4, hidden=2), NADE(4, hidden=2), 1)
    with pytest.raises(ChainruleError, match="too many"):
        all_configurations(40)


def _learned_copy(bn, n: int, seed: int):
    """The same structure, CPDs counted (Laplace smoothing) from n samples of `bn`."""
    from chainrule.graphical import BayesianNetwork

    x = bn.sample(n, generator=torch.Generator().manual_seed(seed))
    return BayesianNetwork(dict(bn.state_names), bn.edges, bn.cpds(), name="learned").fit(x)


def test_bayesian_network_kl_by_elimination_matches_enumeration_and_monte_carlo() -> None:
    from pathlib import Path

    from chainrule.graphical import read_bif
    from chainrule.kl import kl_divergence

    asia = read_bif(Path(__file__).parent / "data" / "bif" / "asia.bif.gz")
    learned = _learned_copy(asia, 500, seed=0)
    exact = kl_divergence(asia, learned)
    assert exact["method"] == "variable-elimination" and exact["kl"] > 1e-3
    assert math.isclose(exact["kl"], kl_divergence_exact_tabular(asia, learned), rel_tol=1e-9)
    mc = kl_divergence(asia, learned, data=asia.sample(20_000, generator=torch.Generator().manual_seed(2)))
    assert mc["method"] == "monte-carlo" and abs(mc["kl"] - exact["kl"]) < 4 * mc["stderr"]
    assert kl_divergence(asia, asia)["kl"] == 0.0


def kl_divergence_exact_tabular(p, q) -> float:
    """KL by enumerating every joint state (the route kl_divergence takes for small supports)."""
    from chainrule.graphical.tabular import enumerate_states

    x = enumerate_states(p.cardinalities)
    lp, lq = p.log_prob(x), q.log_prob(x)
    return float(torch.where(lp.exp() > 0, lp.exp() * (lp - lq), 0.0).sum())


def test_kl_divergence_picks_enumeration_for_small_discrete_models() -> None:
    from chainrule.kl import kl_divergence

    p, q = randomize(NADE(6, hidden=3).double(), seed=3), randomize(FVSBN(6).double(), seed=4)
    r = kl_divergence(p, q)
    assert r["method"] == "enumeration" and r["kl"] == pytest.approx(kl_divergence_exact(p, q), rel=1e-12)
    mc = kl_divergence(p, q, data=p.sample(20_000, generator=torch.Generator().manual_seed(0)))
    assert abs(mc["kl"] - r["kl"]) < 4 * mc["stderr"]
