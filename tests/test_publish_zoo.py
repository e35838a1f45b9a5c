"""scripts/publish_zoo.py --continues: a warm-started run becomes the next stage of a zoo entry."""

from __future__ import annotations

import sys
from pathlib import Path

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
