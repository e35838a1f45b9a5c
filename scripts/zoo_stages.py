"""A zoo entry's training stages: a run warm-started from the entry (`--continues`) added as its next
stage, and unpublished runs chained before the entry existed (`--earlier-stages`) as its first ones.
Used by scripts/publish_zoo.py."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from chainrule.persistence import CONFIG, atomic_write_bytes


def read_previous(dst: Path) -> dict:
    """The entry's metrics before a continued stage is published over it."""
    path = dst / "metrics.json"
    if not path.exists():
        raise SystemExit(f"--continues: {path} does not exist; publish the first stage without it")
    return json.loads(path.read_text())


def earlier_stages(run_dirs: list[str], dst: Path, recipes: Path = Path("recipes")) -> dict:
    """The record of unpublished runs chained before the one being published, shaped like an
    entry's metrics (`stages` and `command`): each stage's recipe, date, epochs, training time and
    validation NLL from its model's config.json, and its learning curve copied as curves-stage-N.png."""
    stages, commands = [], []
    for number, run in enumerate(map(Path, run_dirs), 1):
        config = run / "model" / CONFIG
        if not config.is_file():
            raise SystemExit(f"--earlier-stages: {config} does not exist; name finished runs' folders")
        training = json.loads(config.read_text()).get("training", {})
        stage = {
            "date": datetime.date.fromtimestamp(config.stat().st_mtime).isoformat(),
            "epochs": training.get("epochs"),
            "recipe": recipe_path(run, recipes),
            "train_seconds": training.get("train_seconds"),
            "best_val_nll": training.get("best_val_nll"),
            "test_nll_nats": None,
        }
        if (run / "curves.png").exists():
            stage["curves"] = f"curves-stage-{number}.png"
            atomic_write_bytes(dst / stage["curves"], (run / "curves.png").read_bytes())
        stages.append(stage)
        commands.append(f"chainrule train {stage['recipe']}")
    return {"stages": stages, "command": " && ".join(commands)}


def recipe_path(run: Path, recipes: Path) -> str:
    """The recipe file a run was trained from: the recipes/*.yaml whose `out` is the run's folder."""
    import yaml

    for path in sorted(recipes.glob("*.yaml")):
        if Path(str(yaml.safe_load(path.read_text()).get("out", ""))) == run:
            return str(path)
    raise SystemExit(f"--earlier-stages: no {recipes}/*.yaml has out: {run}")


def stage_of(metrics: dict) -> dict:
    """One stage's record from an entry's metrics (a first stage published before stages existed)."""
    return {k: metrics.get(k) for k in ("date", "epochs", "recipe", "train_seconds", "best_val_nll")} | {
        "test_nll_nats": metrics["test"]["nll_nats"]
    }


def with_stage(previous: dict, metrics: dict, run_dir: Path, dst: Path) -> dict:
    """`metrics` of a warm-started run as the next stage of the entry `previous`: the stages
    listed, epochs and training time summed, the commands chained, the run's learning curve
    copied as curves.png (an earlier stage's curves.png kept as curves-stage-N.png).

    Safe to rerun after a crash: metrics.json, written last, still names the earlier stage's
    curves.png, and its copy curves-stage-N.png, once written, is never written again (so the new
    stage's curves.png cannot take its place)."""
    stages = [dict(s) for s in previous.get("stages") or [stage_of(previous)]]
    for number, stage in enumerate(stages, 1):
        if stage.get("curves") == "curves.png":
            stage["curves"] = f"curves-stage-{number}.png"
            if not (dst / stage["curves"]).exists():
                atomic_write_bytes(dst / stage["curves"], (dst / "curves.png").read_bytes())
    stage = stage_of(metrics)
    if (run_dir / "curves.png").exists():
        atomic_write_bytes(dst / "curves.png", (run_dir / "curves.png").read_bytes())
        stage["curves"] = "curves.png"
    stages.append(stage)
    return {
        **metrics,
        "stages": stages,
        "epochs": sum(s["epochs"] or 0 for s in stages),
        "train_seconds": sum(s["train_seconds"] or 0 for s in stages),
        "command": f"{previous['command']} && {metrics['command']}",
    }
