"""Ancestral sampling: with 10^5 draws, every state frequency of every node lies within 4 standard
errors of the exact marginal computed by variable elimination."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from chainrule.graphical import read_bif

DATA = Path(__file__).parent / "data" / "bif"
N = 100_000


@pytest.mark.parametrize("name", ["asia", "alarm"])
def test_sample_frequencies_match_exact_marginals(name: str) -> None:
    bn = read_bif(DATA / f"{name}.bif.gz")
    x = bn.sample(N, generator=torch.Generator().manual_seed(0))
    assert x.shape == (N, len(bn.names)) and x.dtype == torch.long
    checked = 0
    for j, v in enumerate(bn.names):
        p = bn.query(v)
        freq = torch.bincount(x[:, j], minlength=len(p)).double() / N
        se = torch.sqrt(p * (1 - p) / N)
        bad = (freq - p).abs() > 4 * se + 1e-12
        assert not bad.any(), f"{v}: frequencies {freq.tolist()} vs exact {p.tolist()}"
        checked += len(p)
    assert checked == sum(bn.cardinalities)


def test_zero_probability_states_are_never_drawn() -> None:
    bn = read_bif(DATA / "asia.bif.gz")  # `either` is a deterministic OR of lung and tub
    x = bn.sample(20_000, generator=torch.Generator().manual_seed(1))
    i = {v: bn.names.index(v) for v in ("lung", "tub", "either")}
    either_yes = x[:, i["either"]] == 0
    lung_or_tub = (x[:, i["lung"]] == 0) | (x[:, i["tub"]] == 0)
    assert torch.equal(either_yes, lung_or_tub)
    assert math.isfinite(bn.log_prob(x).min().item())
