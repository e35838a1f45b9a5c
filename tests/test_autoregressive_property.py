"""The gradient of output i w.r.t. input j is zero whenever j does not come before i."""

# The contract suite (tests/contract) checks each family's tiny_config(); here: the other variants
# (orders, deeper MADEs, every member of an ensemble).

from __future__ import annotations

import pytest
import torch

from tests.conftest import beyond_contract, small_models

MODELS = small_models(8)


def jacobian(model, x: torch.Tensor) -> torch.Tensor:
    """J[i, j] = d params_i / d x_j (summed over categorical outputs)."""
    return torch.autograd.functional.jacobian(lambda v: model.conditioner(v[None])[0], x)


@pytest.mark.parametrize("name", beyond_contract(MODELS))
def test_no_dependence_on_later_or_same_dimensions(name: str) -> None:
    model = MODELS[name]
    masks = range(getattr(model, "num_masks", 1))
    for m in masks:
        if hasattr(model, "use_mask"):
            model.use_mask(m)
        order = model.member_order()  # the order of the member in use
        pos = {d: t for t, d in enumerate(order)}
        x = torch.rand(8, dtype=torch.float64)
        J = jacobian(model, x).abs()
        allowed = torch.tensor([[pos[j] < pos[i] for j in range(8)] for i in range(8)])
        assert (J[~allowed] == 0).all(), f"{name} mask {m}: forbidden dependency"
        # and the model is not trivially disconnected: most allowed links are used
        assert (J[allowed] > 0).float().mean() > 0.5, f"{name} mask {m}: too few dependencies"
    if hasattr(model, "use_mask"):
        model.use_mask(0)
