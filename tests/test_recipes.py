"""Every committed recipe is valid: known sections and keys, training settings that pass
`TrainConfig.check`, and a model the registry can build (data are not loaded: that is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.models import MODEL_REGISTRY
from chainrule.recipes import load_recipe
from chainrule.training import TrainConfig

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


#: the model folders that recipes' runs write (`OUT/model`), where a later stage may warm-start
CHAINED = {f"{load_recipe(p)['out']}/model" for p in RECIPES}


def test_a_chained_stage_starts_from_an_earlier_recipes_run():
    """A recipe that warm-starts from a run's model names a run some recipe makes."""
    for path in RECIPES:
        start = (load_recipe(path).get("train") or {}).get("init_from", "")
        if start.startswith("runs/"):
            assert start in CHAINED, f"{path.name}: no recipe writes {start}"


def test_there_are_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_is_valid(path: Path):
    recipe = load_recipe(path)  # checks sections and keys
    train = dict(recipe.get("train") or {})
    if train.get("init_from") in CHAINED:  # a later stage: an earlier recipe's run writes it
        train.pop("init_from")
    TrainConfig(**train).check()
    assert recipe["model"]["name"] in MODEL_REGISTRY
    assert recipe.get("description"), f"{path.name} says what it trains"
    assert recipe.get("out", "").startswith("runs/"), f"{path.name} writes under runs/"
