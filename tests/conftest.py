"""Shared fixtures: small models of every autoregressive family with random (non-trivial) weights."""

from __future__ import annotations

import itertools
import os

import pytest
import torch

from chainrule.models import FVSBN, MADE, NADE

# The test machines are shared 2-core boxes. With two intra-op threads, OpenMP waits at every
# barrier for a sibling thread that another job has descheduled: a tiny training run took 297 s
# instead of 8 s under load. One thread per process (subprocesses inherit the variable) keeps
# the suite fast; the benchmarks, not the tests, measure speed.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


def randomize(model: torch.nn.Module, std: float = 0.7, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values so no conditional is trivially uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model.eval()


def all_binary(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def small_models(n: int = 8) -> dict[str, torch.nn.Module]:
    """One instance of every model variant, in float64, on `n` binary dimensions."""
    rev = list(range(n))[::-1]
    shuffled = [3, 1, 0, 2, 7, 6, 5, 4] if n == 8 else rev
    models = {
        "fvsbn": FVSBN(n),
        "fvsbn-order": FVSBN(n, order=shuffled),
        "nade": NADE(n, hidden=6),
        "nade-order": NADE(n, hidden=6, order=shuffled),
        "made-1mask": MADE(n, hidden=[20]),
        "made-2layers": MADE(n, hidden=[20, 15]),
        "made-ensemble": MADE(n, hidden=[20], num_masks=4),
        "made-random-orders": MADE(n, hidden=[20, 20], num_masks=3, ordering="random", seed=3),
    }
    return {k: randomize(m.double(), seed=i) for i, (k, m) in enumerate(models.items())}


#: variants of `small_models` that the contract suite (tests/contract) already checks through
#: each family's tiny_config() (one natural or random order, one mask): the per-family tests
#: run only the other variants (orders, deeper MADEs, ensembles) and other sizes
CONTRACT_COVERED = frozenset({"fvsbn", "nade", "made-1mask"})


def beyond_contract(models: dict[str, torch.nn.Module]) -> list[str]:
    """The names in `models` that the contract suite does not already cover."""
    return [name for name in models if name not in CONTRACT_COVERED]


@pytest.fixture(scope="session")
def models8() -> dict[str, torch.nn.Module]:
    return small_models(8)
