"""MADE with an explicit order (`order=[1, 2, 0]`, as NADE and FVSBN take): the masks follow the
order (dependency test), the density stays normalised (enumeration), and the order is saved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.kl import all_configurations
from chainrule.models import FVSBN, MADE, NADE
from chainrule.models.autoencoder import dependency_matrix
from chainrule.models.autoregressive import check_order
from chainrule.persistence import load, save


def allowed(order: list[int]) -> torch.Tensor:
    """[i, j] True when output i may depend on input j: j comes before i in `order`."""
    position = {d: t for t, d in enumerate(order)}
    d = len(order)
    return torch.tensor([[position[j] < position[i] for j in range(d)] for i in range(d)])


def test_the_notes_example_x2_x3_x1() -> None:
    """p(x1, x2, x3) = p(x2) p(x3 | x2) p(x1 | x2, x3): 1-based x2, x3, x1 is order [1, 2, 0]."""
    made = MADE(3, hidden=[16, 16], order=[1, 2, 0], seed=0)
    assert made.sampling_order() == [1, 2, 0]
    connectivity = dependency_matrix(made.conditioner, 3)
    expected = torch.tensor([[False, True, True], [False, False, False], [False, True, False]])
    assert torch.equal(connectivity, expected), connectivity.int()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dependency_follows_any_order(seed: int) -> None:
    d = 7
    order = torch.randperm(d, generator=torch.Generator().manual_seed(seed)).tolist()
    made = MADE(d, hidden=[32, 32], order=order, seed=seed)
    found = dependency_matrix(made.conditioner, d)
    assert not (found & ~allowed(order)).any(), (order, found.int())
    assert found.any()  # the dependency test can fail: the masks let something through


def test_an_unmasked_dependency_is_caught() -> None:
    """The dependency test fails a network that breaks the order (here: the natural order's masks
    checked against the reversed order)."""
    made = MADE(4, hidden=[16], seed=0)
    assert (dependency_matrix(made.conditioner, 4) & ~allowed([3, 2, 1, 0])).any()


@pytest.mark.parametrize("num_masks, ordering", [(1, "natural"), (3, "natural"), (3, "random")])
def test_normalised_by_enumeration(num_masks: int, ordering: str) -> None:
    torch.manual_seed(0)
    made = MADE(6, hidden=[16], num_masks=num_masks, ordering=ordering, order=[4, 0, 5, 2, 1, 3]).double()
    with torch.no_grad():
        for p in made.parameters():
            p.normal_()
    total = made.log_prob(all_configurations(6)).exp().sum().item()
    assert abs(total - 1) < 1e-10


def test_every_mask_uses_the_order_unless_random() -> None:
    order = [2, 0, 3, 1]
    made = MADE(4, hidden=[8], num_masks=3, order=order)
    assert all(made.order_of(m) == order for m in range(3))
    agnostic = MADE(4, hidden=[8], num_masks=3, ordering="random", order=order)
    assert agnostic.order_of(0) == order


def test_order_saved_and_loaded(tmp_path) -> None:
    made = MADE(5, hidden=[8], order=[4, 3, 2, 1, 0])
    save(made, tmp_path)
    loaded = load(tmp_path)
    assert loaded.config()["order"] == [4, 3, 2, 1, 0]
    assert loaded.sampling_order() == [4, 3, 2, 1, 0]
    x = all_configurations(5, dtype=torch.float32)
    assert torch.equal(made.log_prob(x), loaded.log_prob(x))


def test_no_order_is_the_natural_order_bit_for_bit() -> None:
    """Existing model folders (config.json without `order`) rebuild the same masks as before."""
    torch.manual_seed(0)
    a = MADE(6, hidden=[16], num_masks=4, ordering="random", seed=3)
    torch.manual_seed(0)
    b = MADE(6, hidden=[16], num_masks=4, ordering="random", seed=3, order=list(range(6)))
    for (k, v), (k2, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, w), k
    assert a.config()["order"] is None


def test_fast_sampler_and_completion_follow_the_order() -> None:
    made = MADE(5, hidden=[16], order=[3, 1, 4, 0, 2], seed=1)
    fast = made.sample(20, generator=torch.Generator().manual_seed(0))
    generic = made.sample(20, generator=torch.Generator().manual_seed(0), method="generic")
    assert torch.equal(fast, generic)
    given = torch.ones(20, 5)
    mask = torch.tensor([False, True, False, True, False])  # the first two in the order
    out = made.sample(20, given=given, mask=mask)
    assert torch.equal(out[:, mask], given[:, mask])


@pytest.mark.parametrize("order", [[0, 1], [0, 1, 1], [1, 2, 3]])
def test_bad_order_is_refused(order) -> None:
    with pytest.raises(ChainruleError):
        MADE(3, hidden=[8], order=order)


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["a", 0, 1], "its entries must be integers, got \\['a', 0, 1\\]"),
        ([1.0, 0, 2], "its entries must be integers"),
        ([True, False, 2], "its entries must be integers"),
        (5, "got 5"),
        ("012", "got '012'"),
        ([0, 1], "got \\[0, 1\\] \\(2 entries\\)"),
        ([0, 0, 1], "missing \\[2\\]"),
        ([0, 1, 3], "missing \\[2\\]"),
    ],
)
def test_check_order_raises_a_chainrule_error_naming_the_order(order, message) -> None:
    """Called directly (as a constructor does), never a bare ValueError/TypeError from int()."""
    with pytest.raises(ChainruleError, match="order must be a permutation of 0..2 .*" + message):
        check_order(order, 3)
    assert issubclass(ChainruleError, ValueError)  # callers catching ValueError still do


@pytest.mark.parametrize("model", [NADE, FVSBN, MADE])
def test_the_ordered_models_refuse_a_bad_order_with_a_chainrule_error(model) -> None:
    kw = {"hidden": [8]} if model is MADE else {"hidden": 4} if model is NADE else {}
    with pytest.raises(ChainruleError, match="order"):
        model(3, order=[0, 0, 1], **kw)


def test_check_order_accepts_integer_arrays_and_tensors() -> None:
    assert check_order(np.array([2, 0, 1]), 3) == [2, 0, 1]
    assert check_order(torch.tensor([2, 0, 1]), 3) == [2, 0, 1]
    assert check_order((1, 2, 0), 3) == [1, 2, 0] and check_order(None, 3) == [0, 1, 2]
    assert all(type(i) is int for i in check_order(np.array([1, 0]), 2))
