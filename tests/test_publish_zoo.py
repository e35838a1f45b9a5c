"""scripts/publish_zoo.py --continues: a warm-started run becomes the next stage of a zoo entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import publish_zoo  # noqa: E402


def metrics(recipe: str, epochs: int, seconds: float, nll: float) -> dict:
    return {
        "recipe": recipe,
        "command": f"chainrule train {recipe}",
        "date": "2026-12-07",
        "epochs": epochs,
        "train_seconds": seconds,
        "test": {"nll_nats": nll},
    }


def test_stages_accumulate_with_their_learning_curves(tmp_path: Path) -> None:
    entry, run2, run3 = tmp_path / "zoo", tmp_path / "run2", tmp_path / "run3"
    for folder in (entry, run2, run3):
        folder.mkdir()
    (run2 / "curves.png").write_bytes(b"second")
    (run3 / "curves.png").write_bytes(b"third")
    first = metrics("a.yaml", 16, 100.0, 84.0)  # published before stages existed

    second = publish_zoo.with_stage(first, metrics("b.yaml", 10, 50.0, 83.5), run2, entry)
    assert [s["recipe"] for s in second["stages"]] == ["a.yaml", "b.yaml"]
    assert second["stages"][1]["curves"] == "curves.png" and "curves" not in second["stages"][0]
    assert (second["epochs"], second["train_seconds"]) == (26, 150.0)
    assert second["command"] == "chainrule train a.yaml && chainrule train b.yaml"

    third = publish_zoo.with_stage(second, metrics("c.yaml", 5, 25.0, 83.2), run3, entry)
    assert [s["test_nll_nats"] for s in third["stages"]] == [84.0, 83.5, 83.2]
    assert [s.get("curves") for s in third["stages"]] == [None, "curves-stage-2.png", "curves.png"]
    assert (entry / "curves-stage-2.png").read_bytes() == b"second"
    assert (entry / "curves.png").read_bytes() == b"third"
    assert (third["epochs"], third["train_seconds"]) == (31, 175.0)
    assert third["command"].count("&&") == 2


def test_a_rerun_after_a_crash_keeps_the_earlier_stages_curves(tmp_path: Path) -> None:
    """A publish that died before metrics.json was written is run again: the earlier stage's
    curves stay those of the earlier stage, not the new run's."""
    entry, run2, run3 = tmp_path / "zoo", tmp_path / "run2", tmp_path / "run3"
    for folder in (entry, run2, run3):
        folder.mkdir()
    (run2 / "curves.png").write_bytes(b"second")
    (run3 / "curves.png").write_bytes(b"third")
    second = publish_zoo.with_stage(
        metrics("a.yaml", 16, 100.0, 84.0), metrics("b.yaml", 10, 50.0, 83.5), run2, entry
    )

    for _ in range(2):  # the first call's result is lost (no metrics.json), as in a crash
        third = publish_zoo.with_stage(second, metrics("c.yaml", 5, 25.0, 83.2), run3, entry)
    assert [s.get("curves") for s in third["stages"]] == [None, "curves-stage-2.png", "curves.png"]
    assert (entry / "curves-stage-2.png").read_bytes() == b"second"
    assert (entry / "curves.png").read_bytes() == b"third"


def test_earlier_unpublished_runs_become_the_first_stages(tmp_path: Path, monkeypatch) -> None:
    """Runs chained before the entry existed (--earlier-stages) are its first stages: recipe found
    by the run folder, epochs, time and validation NLL from the saved model, curves copied."""
    monkeypatch.chdir(tmp_path)
    entry, recipes, run3 = Path("zoo"), Path("recipes"), Path("runs/c")
    for folder in (entry, recipes, run3):
        folder.mkdir(parents=True)
    for name, epochs, seconds in (("a", 16, 100.0), ("b", 10, 50.0)):
        (recipes / f"{name}.yaml").write_text(f"out: runs/{name}\n")
        (Path("runs") / name / "model").mkdir(parents=True)
        training = {"epochs": epochs, "train_seconds": seconds, "best_val_nll": 90.0 - epochs}
        (Path("runs") / name / "model" / publish_zoo.CONFIG).write_text(json.dumps({"training": training}))
    (Path("runs/a") / "curves.png").write_bytes(b"first")

    earlier = publish_zoo.earlier_stages(["runs/a", "runs/b/"], entry)
    assert [s["recipe"] for s in earlier["stages"]] == ["recipes/a.yaml", "recipes/b.yaml"]
    assert [s["best_val_nll"] for s in earlier["stages"]] == [74.0, 80.0]
    assert [s.get("curves") for s in earlier["stages"]] == ["curves-stage-1.png", None]
    assert (entry / "curves-stage-1.png").read_bytes() == b"first"

    (run3 / "curves.png").write_bytes(b"third")
    third = publish_zoo.with_stage(earlier, metrics("recipes/c.yaml", 5, 25.0, 83.2), run3, entry)
    assert [s["test_nll_nats"] for s in third["stages"]] == [None, None, 83.2]
    assert (third["epochs"], third["train_seconds"]) == (31, 175.0)
    assert third["command"] == (
        "chainrule train recipes/a.yaml && chainrule train recipes/b.yaml && chainrule train recipes/c.yaml"
    )


def test_an_earlier_stage_without_a_recipe_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "runs/a/model").mkdir(parents=True)
    (tmp_path / "runs/a/model" / publish_zoo.CONFIG).write_text("{}")
    with pytest.raises(SystemExit, match="no recipes/\\*.yaml has out: runs/a"):
        publish_zoo.earlier_stages(["runs/a"], tmp_path)


def test_a_slow_full_test_evaluation_records_a_quick_prefix_check() -> None:
    """An entry whose whole test set took long to score records its first test images' NLL, which
    tests/test_zoo.py scores instead; a quick one records nothing (the test scores everything)."""
    from types import SimpleNamespace

    from chainrule.evaluation import evaluate_nll
    from chainrule.models import FVSBN

    model = FVSBN(6)
    n = publish_zoo.PREFIX_CHECK_N
    data = SimpleNamespace(test=torch.bernoulli(torch.full((n + 50, 6), 0.4)))
    slow = publish_zoo.SLOW_TEST_SECONDS + 1
    check = publish_zoo.prefix_check(model, data, None, slow)
    assert check == {"n": n, "nll_nats": evaluate_nll(model, data.test[:n]).nll_nats}
    assert publish_zoo.prefix_check(model, data, None, publish_zoo.SLOW_TEST_SECONDS / 2) is None
    small = SimpleNamespace(test=data.test[:n])
    assert publish_zoo.prefix_check(model, small, None, slow) is None
