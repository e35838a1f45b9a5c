"""Time to quality: the wall time MADE, NADE and Gated PixelCNN take, trained with their recipes'
settings on this machine, to reach a validation NLL (default 90 nats) on binarized MNIST.

    .venv/bin/python -m benchmarks.time_to_quality              # all three: at most 70 minutes (about 45)
    .venv/bin/python -m benchmarks.time_to_quality --quick      # tiny models on 8x8 digits (seconds)

Each model trains through `chainrule.training.fit` exactly as `chainrule train RECIPE` would (the
recipe's batch size, learning rate and schedule, precision, `train.compile`, EMA...; only the
progress bar is off), with every thread of the machine unless `--threads` says otherwise. A
callback scores a fixed validation subset (the first 2,000 images of the validation split, fp32,
on the EMA parameters where the recipe averages) every `--check-every` seconds of training and
stops the run the first time the NLL is at or below `--target`, or at `--max-minutes` of wall time.
Times start when Lightning starts the run (data already loaded) and include `torch.compile`'s first
compilation: `train` excludes all validation (these checks and the recipe's own end-of-epoch
validation), `total` includes it; both are what the first check at or below the target saw, so a
time is late by at most one check interval. Writes benchmarks/results/time_to_quality.json (the
curve of every run) and time_to_quality.png (validation NLL against wall minutes);
`scripts/update_readme.py` makes the README's table from the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.common import RESULTS, machine_info, read_result
from chainrule.benchmark.common import write_result
from chainrule.data.loading import VAL_BATCH, eval_loader
from chainrule.recipes import build_from_recipe, load_recipe
from chainrule.training import fit
from chainrule.training.callbacks import ParameterEMA

ROOT = Path(__file__).resolve().parent.parent
RECIPES = {
    "made": "recipes/made-mnist.yaml",
    "nade": "recipes/nade-mnist.yaml",
    "gated-pixelcnn": "recipes/gated-pixelcnn-mnist.yaml",
}
#: Wall-clock cap per model (minutes) and the training seconds between two validation checks.
MAX_MINUTES = {"made": 10.0, "nade": 20.0, "gated-pixelcnn": 40.0}
CHECK_EVERY = {"made": 10.0, "nade": 20.0, "gated-pixelcnn": 30.0}
TARGET = 90.0
VAL_SUBSET = 2000
#: --quick: tiny versions of the recipes on the 8x8 binary digits, a target near the start's NLL.
QUICK = {
    "target": 36.0,
    "max_minutes": 0.05,
    "check_every": 0.2,
    "common": ["data.name=digits", "train.compile=false", "train.batch_size=32", "train.warmup_steps=0"],
    "made": ["model.hidden=[32]"],
    "nade": ["model.hidden=16"],
    "gated-pixelcnn": [
        "model.channels=8",
        "model.layers=2",
        "model.first_kernel=3",
        "model.output_channels=16",
        "train.limit_val_batches=1.0",
    ],
}


class TimeToTarget(Callback):
    """Scores `x_val` every `check_every` training seconds and stops the run at the first NLL <=
    `target` or after `max_seconds` of wall time; keeps the curve. Validation time (these checks and
    Lightning's own validation loops) is measured and kept out of the training seconds."""

    def __init__(self, name: str, x_val: torch.Tensor, target: float, check_every: float, max_seconds: float):
        self.name, self.x_val, self.target = name, x_val, target
        self.check_every, self.max_seconds = check_every, max_seconds
        self.t0 = 0.0
        self.check_seconds = self.epoch_val_seconds = 0.0
        self._val_start = 0.0
        self._last_check = 0.0
        self.curve: list[dict[str, Any]] = []
        self.epoch_val: list[dict[str, Any]] = []
        self.reached: dict[str, Any] | None = None
        self.capped = False
        self.step = 0

    def total(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.t0

    def train_seconds(self, now: float | None = None) -> float:
        return self.total(now) - self.check_seconds - self.epoch_val_seconds

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t0 = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_val_seconds += time.perf_counter() - self._val_start
        nll = trainer.callback_metrics.get("val_nll")
        if nll is not None and not trainer.sanity_checking:
            self.epoch_val.append(
                {"epoch": trainer.current_epoch, "step": trainer.global_step, "val_nll": float(nll)}
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now = time.perf_counter()
        self.step = trainer.global_step
        if self.train_seconds(now) - self._last_check >= self.check_every:
            self.check(trainer, pl_module, now)
        if self.reached is None and self.total() >= self.max_seconds:
            self.capped = trainer.should_stop = True

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule, now: float) -> None:
        """One validation of the subset; the point's times are those before it started."""
        point = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "train_seconds": round(self.train_seconds(now), 2),
            "total_seconds": round(self.total(now), 2),
        }
        self._last_check = self.train_seconds(now)
        point["val_nll"] = round(subset_nll(trainer, pl_module, self.x_val), 4)
        self.check_seconds += time.perf_counter() - now
        self.curve.append(point)
        print(
            f"{self.name}: step {point['step']} (epoch {point['epoch']}), {point['train_seconds']:.0f} s"
            f" training, {point['total_seconds']:.0f} s in all: validation NLL {point['val_nll']:.2f}",
            file=sys.stderr,
            flush=True,
        )
        if point["val_nll"] <= self.target and self.reached is None:
            self.reached = point
            trainer.should_stop = True


def subset_nll(trainer: L.Trainer, pl_module: L.LightningModule, x: torch.Tensor) -> float:
    """Mean NLL (nats) of the rows `x` of the validation split through the run's own objective, in
    eval mode, on the averaged parameters where the run keeps an EMA (as its validation does)."""
    ema = next((c for c in trainer.callbacks if isinstance(c, ParameterEMA)), None)  # type: ignore[attr-defined]
    averaged = ema.averaged(pl_module) if ema is not None else contextlib.nullcontext()
    was_training = pl_module.training
    pl_module.eval()
    total, count = 0.0, 0
    try:
        with averaged, torch.no_grad():
            for batch in eval_loader(x, VAL_BATCH):
                nll = pl_module.objective.val_nll([b.to(pl_module.device) for b in batch])
                total += float(nll.double().sum())
                count += nll.numel()
    finally:
        pl_module.train(was_training)
    return total / count


def per_model(text: str | None, defaults: dict[str, float], option: str) -> dict[str, float]:
    """`--option 10` (every model) or `--option made=10,nade=20` (those models; defaults elsewhere)."""
    values = dict(defaults)
    if not text:
        return values
    try:
        if "=" not in text:
            return {k: float(text) for k in values}
        for item in text.split(","):
            key, value = item.split("=")
            if key.strip() not in values:
                raise SystemExit(f"{option}: unknown model {key.strip()!r}; use {', '.join(values)}")
            values[key.strip()] = float(value)
    except ValueError as e:
        raise SystemExit(f"{option}: expected minutes like 10 or made=10,nade=20, got {text!r}") from e
    return values


def run_model(
    name: str, target: float, max_minutes: float, check_every: float, quick: bool, runs: Path
) -> dict[str, Any]:
    """Train one recipe until the target or the cap; the row of the JSON."""
    overrides = ["train.progress=false", *(QUICK["common"] + QUICK[name] if quick else [])]
    recipe = load_recipe(ROOT / RECIPES[name], overrides)
    model, dataset, config = build_from_recipe(recipe)
    x_val = dataset.split("val")[:VAL_SUBSET]
    watch = TimeToTarget(name, x_val, target, check_every, max_minutes * 60)
    start = time.perf_counter()
    result = fit(model, dataset, config, runs / name, callbacks=[watch], force=True)
    best = min([p["val_nll"] for p in watch.curve] or [float("nan")])
    reached = watch.reached
    steps = reached["step"] if reached else watch.step
    return {
        "model": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe": RECIPES[name],
        "overrides": overrides,
        "target_nll": target,
        "reached": reached is not None,
        "seconds_to_target": (
            {"train": reached["train_seconds"], "total": reached["total_seconds"]} if reached else None
        ),
        "steps": steps,
        "epochs": round(steps / max(1, steps_per_epoch(dataset, config)), 2),
        "best_val_nll": round(best, 4),
        "stopped_by": "target" if reached else ("max_minutes" if watch.capped else "recipe"),
        "elapsed_seconds": {
            "total": round(watch.total(), 1),
            "train": round(watch.train_seconds(), 1),
            "validation_checks": round(watch.check_seconds, 1),
            "epoch_validation": round(watch.epoch_val_seconds, 1),
            "fit_call_with_setup_and_save": round(time.perf_counter() - start, 1),
        },
        "max_minutes": max_minutes,
        "check_every_train_seconds": check_every,
        "validation_images": len(x_val),
        "curve": watch.curve,
        "epoch_end_val_nll": watch.epoch_val,
        "fit_best_val_nll": result.best_val_nll,
    }


def steps_per_epoch(dataset: Any, config: Any) -> int:
    """Training steps of one epoch (incomplete batches are dropped)."""
    n = len(dataset.train) // config.batch_size
    limit = config.limit_train_batches
    return int(n * limit) if isinstance(limit, float) else min(n, limit)


def run(
    models: list[str] | None = None,
    target: float | None = None,
    max_minutes: dict[str, float] | None = None,
    check_every: dict[str, float] | None = None,
    quick: bool = False,
    runs: Path | None = None,
) -> dict[str, Any]:
    """Every model in turn; the JSON payload (without writing it)."""
    models = models or list(RECIPES)
    if quick:
        target = QUICK["target"] if target is None else target
        max_minutes = max_minutes or dict.fromkeys(RECIPES, QUICK["max_minutes"])
        check_every = check_every or dict.fromkeys(RECIPES, QUICK["check_every"])
    target = TARGET if target is None else target
    max_minutes, check_every = max_minutes or MAX_MINUTES, check_every or CHECK_EVERY
    with tempfile.TemporaryDirectory(prefix="time-to-quality-") as tmp:
        folder = runs or Path(tmp)
        rows = [run_model(m, target, max_minutes[m], check_every[m], quick, folder) for m in models]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "threads": torch.get_num_threads(),
        "quick": quick,
        "target_nll": target,
        "validation": f"the first {VAL_SUBSET:,} images of the validation split (or all, if fewer), fp32",
        "models": rows,
        "notes": "seconds_to_target: at the first validation check at or below the target (late by at most"
        " one check interval); train excludes every validation, total includes it; both include"
        " torch.compile's first compilation. Each run trains with its recipe's settings through"
        " chainrule.training.fit; the recipe's own max_minutes still shapes a cosine-time schedule.",
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Validation NLL against total wall minutes, one line per model, the target dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for row in result["models"]:
        minutes = [p["total_seconds"] / 60 for p in row["curve"]]
        (line,) = ax.plot(minutes, [p["val_nll"] for p in row["curve"]], marker=".", label=row["model"])
        if row["reached"]:
            ax.plot(
                row["seconds_to_target"]["total"] / 60,
                row["curve"][-1]["val_nll"],
                "o",
                color=line.get_color(),
            )
    ax.axhline(
        result["target_nll"], color="grey", linestyle="--", label=f"target {result['target_nll']:g} nats"
    )
    lows = [p["val_nll"] for r in result["models"] for p in r["curve"]]
    if lows:  # the first checks of an untrained model would flatten everything else
        ax.set_ylim(min(lows + [result["target_nll"]]) - 2, max(result["target_nll"] + 25, min(lows) + 5))
    ax.set_xlabel("wall minutes (validation included)")
    ax.set_ylabel(f"validation NLL (nats, {result['validation'].split(' of ')[0]})")
    threads = result["threads"]
    ax.set_title(
        f"Time to quality on {result['machine']['cores']} cores, {threads} torch thread{'s' * (threads != 1)}"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_table(result: dict[str, Any]) -> str:
    """The README's markdown table: one row per model, its time to the target or its best NLL."""
    target = result["target_nll"]
    rows = [
        f"| model | recipe | wall time to ≤ {target:g} nats | of which training | steps (epochs) |"
        " validation NLL then | checked every |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["models"]:
        t = r["seconds_to_target"]
        cells = (
            [f"**{t['total'] / 60:.1f} min**", f"{t['train'] / 60:.1f} min"]
            if t
            else [
                f"not reached in {r['elapsed_seconds']['total'] / 60:.0f} min",
                f"best {r['best_val_nll']:.2f}",
            ]
        )
        nll = r["curve"][-1]["val_nll"] if t else r["best_val_nll"]
        rows.append(
            f"| {r['model']} | `{r['recipe']}` | {cells[0]} | {cells[1]} | {r['steps']:,} ({r['epochs']:g}) |"
            f" {nll:.2f} | {r['check_every_train_seconds']:g} s |"
        )
    return "\n".join(rows)


def keeping_other_models(result: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """`result` plus the rows of `previous` (the file it replaces) for models it did not run, when
    both were measured the same way (target, quick or not, CPU, threads): `--models gated-pixelcnn`
    reruns one model and keeps the others. A kept row without its own date gets its file's."""
    same = previous is not None and all(
        previous.get(k) == result.get(k) for k in ("target_nll", "quick", "threads", "validation")
    )
    if not same or previous["machine"].get("cpu") != result["machine"].get("cpu"):
        return result
    ran = {r["model"] for r in result["models"]}
    kept = {r["model"]: {"date": previous["date"], **r} for r in previous["models"] if r["model"] not in ran}
    rows = {**kept, **{r["model"]: r for r in result["models"]}}
    return {**result, "models": [rows[m] for m in RECIPES if m in rows]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models",
        nargs="+",
        choices=list(RECIPES),
        help="default: all three; the file keeps the other models' rows of an earlier run measured alike",
    )
    p.add_argument("--target", type=float, help=f"validation NLL to reach, nats (default {TARGET:g})")
    p.add_argument(
        "--max-minutes",
        help="wall cap in minutes: 10 (every model) or made=5,nade=15"
        " (default made=10,nade=20,gated-pixelcnn=40)",
    )
    p.add_argument("--check-every", help="training seconds between checks, same syntax (default 10/20/30)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, every core)")
    p.add_argument("--quick", action="store_true", help="tiny models on 8x8 digits, a target near the start")
    p.add_argument(
        "--out", type=Path, help="folder of the JSON and PNG (default benchmarks/results; --quick: none)"
    )
    p.add_argument("--runs", type=Path, help="keep the training runs here (default: a temporary folder)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(
        args.models,
        args.target,
        per_model(args.max_minutes, MAX_MINUTES, "--max-minutes") if args.max_minutes else None,
        per_model(args.check_every, CHECK_EVERY, "--check-every") if args.check_every else None,
        args.quick,
        args.runs,
    )
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result = keeping_other_models(result, read_result("time_to_quality", out))
        write_result("time_to_quality", result, out)
        plot(result, out / "time_to_quality.png")
    for row in result["models"]:
        t = row["seconds_to_target"]
        done = f"{t['total'] / 60:.1f} min ({t['train'] / 60:.1f} training)" if t else "not reached"
        print(f"{row['model']}: {done}; best {row['best_val_nll']:.2f} nats", flush=True)
    return result


if __name__ == "__main__":
    main()
