"""The contract suite: every registered model, every check; one test per (model, check), so a
failure names both. A model whose class has no tiny_config() fails every check."""

from __future__ import annotations

import pytest

from chainrule.checks import CHECKS, run_check

from .conftest import REGISTERED


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", REGISTERED)
def test_contract(name: str, check: str, tiny_models) -> None:
    model = tiny_models(name)
    if not run_check(model, check):
        pytest.skip(f"{check} does not apply to {name} (by its declared capabilities)")


def test_every_model_is_registered() -> None:
    """The registry holds the model families and the graphical/tabular models."""
    assert {"fvsbn", "nade", "made", "gaussian", "vae"} <= set(REGISTERED)
