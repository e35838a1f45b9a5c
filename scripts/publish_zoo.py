"""Copy a finished run's model into zoo/NAME with its measured test metrics and a sample grid.

    .venv/bin/python scripts/publish_zoo.py runs/nade-mnist zoo/nade-mnist --recipe recipes/nade-mnist.yaml

The metrics are measured here, on the fixed test binarization, exactly as `chainrule eval` does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

import torch

from chainrule.data import load_dataset
from chainrule.evaluate import evaluate_nll
from chainrule.persistence import CONFIG, WEIGHTS, atomic_write_json, load
from chainrule.report import image_grid

PUBLISHED = {  # test NLL in nats on binarized MNIST, from the papers the issue cites
    "fvsbn": {"nll": 97.45, "source": "Larochelle & Murray 2011"},
    "nade": {"nll": 88.86, "source": "Larochelle & Murray 2011"},
    "made": {"nll": 88.04, "source": "Germain et al. 2015 (1 mask)"},
    "made-ensemble": {"nll": 86.64, "source": "Germain et al. 2015 (32-mask ensemble)"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("zoo_dir")
    p.add_argument("--recipe", required=True)
    p.add_argument("--data", default="binarized-mnist")
    args = p.parse_args()
    src, dst = Path(args.run_dir) / "model", Path(args.zoo_dir)
    dst.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, CONFIG):
        shutil.copy2(src / name, dst / name)
    model = load(dst)
    data = load_dataset(args.data)
    training = json.loads((dst / CONFIG).read_text()).get("training", {})
    metrics = {
        "model": model.registry_name,
        "config": model.config(),
        "dataset": args.data,
        "recipe": args.recipe,
        "command": f"chainrule train {args.recipe}",
        "eval_command": f"chainrule eval {dst} --data {args.data} --split test",
        "train_seconds": training.get("train_seconds"),
        "epochs": training.get("epochs"),
        "best_val_nll": training.get("best_val_nll"),
        "num_parameters": model.num_parameters(),
        "file_mb": round((dst / WEIGHTS).stat().st_size / 1e6, 2),
        "date": datetime.date.today().isoformat(),
        "test": evaluate_nll(model, data.test).as_dict(),
    }
    key = model.registry_name
    if getattr(model, "num_masks", 1) > 1:
        metrics["test_single_mask"] = evaluate_nll(model, data.test, num_masks=1).as_dict()
        key = "made-ensemble"
    metrics["published"] = PUBLISHED.get(key)
    image_grid(
        model.sample(64, generator=torch.Generator().manual_seed(0)),
        model.image_shape,
        dst / "samples.png",
        title=f"{dst.name}: 64 samples (seed 0)",
    )
    atomic_write_json(dst / "metrics.json", metrics)
    print(json.dumps(metrics["test"]))


if __name__ == "__main__":
    main()
