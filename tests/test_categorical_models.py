"""K-ary autoregressive models (categorical NADE, K-ary FVSBN): exactness, dependencies,
fast == generic sampling, completion and persistence."""

# The contract suite (tests/contract) checks CategoricalNADE.tiny_config() (natural order, K = 3);
# here: the other variants (orders, K-ary FVSBN, which its binary tiny_config does not cover), n = 1.

from __future__ import annotations

import itertools

import pytest
import torch

from chainrule.models import FVSBN, CategoricalNADE
from chainrule.persistence import load, save
from tests.conftest import randomize

K = 3


def all_configurations(n: int, k: int = K) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(k), repeat=n)), dtype=torch.float64)


def models(n: int) -> dict[str, torch.nn.Module]:
    order = list(range(n))[::-1]
    made = {
        "categorical-nade": CategoricalNADE(n, K, hidden=7),
        "categorical-nade-order": CategoricalNADE(n, K, hidden=7, order=order),
        "fvsbn-categorical": FVSBN(n, num_values=K),
        "fvsbn-categorical-order": FVSBN(n, order=order, num_values=K),
    }
    return {name: randomize(m.double(), seed=i) for i, (name, m) in enumerate(made.items())}


MODELS = models(5)
#: the variants the contract suite does not build (it builds a natural-order categorical NADE)
BEYOND_CONTRACT = [name for name in MODELS if name != "categorical-nade"]


@pytest.mark.parametrize(
    ("name", "n"), [*((name, 1) for name in MODELS), *((name, 5) for name in BEYOND_CONTRACT)]
)
def test_probabilities_of_all_configurations_sum_to_one(name: str, n: int) -> None:
    model = MODELS[name] if n == 5 else models(n)[name]
    assert model.log_prob(all_configurations(n)).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_no_dependence_on_later_or_same_dimensions(name: str) -> None:
    model = MODELS[name]
    pos = {d: t for t, d in enumerate(model.sampling_order())}
    base = torch.tensor([[0, 1, 2, 1, 0]], dtype=torch.float64)
    out = model.conditioner(base)
    for j in range(5):  # change input j to every other value: only later outputs may move
        for v in range(K):
            x = base.clone()
            x[0, j] = v
            moved = (model.conditioner(x) - out).abs().sum(-1)[0] > 0
            for i in range(5):
                if pos[j] >= pos[i]:
                    assert not moved[i], f"{name}: output {i} depends on input {j}"


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_fast_sampler_equals_generic_sampler(name: str) -> None:
    model = MODELS[name]
    a = model.sample(200, generator=torch.Generator().manual_seed(3), method="fast")
    b = model.sample(200, generator=torch.Generator().manual_seed(3), method="generic")
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= set(range(K))


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_completion_keeps_observed_values(name: str) -> None:
    model = MODELS[name]
    g = torch.Generator().manual_seed(1)
    given = torch.randint(0, K, (40, 5), generator=g).double()
    mask = torch.rand(40, 5, generator=g) < 0.5
    out = model.sample(40, given=given, mask=mask, generator=g)
    assert torch.equal(out[mask], given[mask])


@pytest.mark.parametrize("name", ["categorical-nade-order", "fvsbn-categorical"])
def test_sample_frequencies_match_probabilities(name: str) -> None:
    model = models(2)[name]
    x = model.sample(20000, generator=torch.Generator().manual_seed(0))
    codes = (x[:, 0] * K + x[:, 1]).long()
    freq = torch.bincount(codes, minlength=K * K).double() / len(x)
    prob = model.log_prob(all_configurations(2)).exp()
    assert torch.allclose(freq, prob, atol=0.015)


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_roundtrip_is_bit_exact(name: str, tmp_path) -> None:
    model = MODELS[name]
    save(model, tmp_path / "m")
    again = load(tmp_path / "m")
    x = all_configurations(5)
    assert torch.equal(model.log_prob(x), again.log_prob(x))
