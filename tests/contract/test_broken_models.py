"""The contract checks catch deliberately broken models, and check_model is usable as a library."""

from __future__ import annotations

import pytest

from chainrule.checks import CHECKS, ContractViolation, check_model
from chainrule.models.base import MODEL_REGISTRY

from .broken_models import BROKEN


@pytest.fixture
def registered():
    """Register the broken models for one test only, then remove them from MODEL_REGISTRY."""
    for name, (cls, _) in BROKEN.items():
        cls.registry_name = name
        MODEL_REGISTRY[name] = cls
    yield
    for name in BROKEN:
        MODEL_REGISTRY.pop(name, None)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_model_fails_its_check(name: str, registered) -> None:
    check = BROKEN[name][1]
    with pytest.raises(ContractViolation, match=rf"{name}.*{check}"):
        check_model(name, checks=[check])
    with pytest.raises(ContractViolation):
        check_model(name)  # the full suite stops on it too


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_model_passes_the_other_checks(name: str, registered) -> None:
    """Each broken model passes the checks its defect does not touch, so the failure above is that
    rule's doing (a peeking conditioner also breaks normalisation and the samplers' agreement)."""
    touched = {BROKEN[name][1], "check_sample_frequencies"}
    if name == "broken-peeking":
        touched |= {"check_normalisation", "check_fast_equals_generic"}
    others = [c for c in CHECKS if c not in touched]
    assert check_model(name, checks=others) == others


def test_broken_models_are_not_left_registered() -> None:
    assert not set(BROKEN) & set(MODEL_REGISTRY)


def test_check_model_runs_and_names_checks() -> None:
    ran = check_model("fvsbn")
    assert "check_normalisation" in ran and "check_autoregressive_dependency" in ran
    assert check_model("fvsbn", checks=["check_capabilities"]) == ["check_capabilities"]
    with pytest.raises(ValueError, match="unknown check"):
        check_model("fvsbn", checks=["check_nothing"])
