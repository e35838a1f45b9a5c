"""Every committed recipe is valid: known sections and keys, training settings that pass
`TrainConfig.check`, and a model the registry can build (data are not loaded: that is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.models import MODEL_REGISTRY
from chainrule.recipes import load_recipe
from chainrule.training import TrainConfig

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_is_valid(path: Path):
    recipe = load_recipe(path)  # checks sections and keys
    TrainConfig(**(recipe.get("train") or {})).check()
    assert recipe["model"]["name"] in MODEL_REGISTRY
    assert recipe.get("description"), f"{path.name} says what it trains"
    assert recipe.get("out", "").startswith("runs/"), f"{path.name} writes under runs/"
