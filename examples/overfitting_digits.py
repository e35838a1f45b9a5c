"""Overfitting and regularisation: train vs validation NLL of MADE on binary 8x8 digits as the
hidden layer grows, with no regularisation, with weight decay, and with early stopping.

To make overfitting appear within a few minutes on one CPU thread, the training set is the
first `TRAIN_SIZE` digits of the fixed training split (validation and test splits are the
full 270 each). Every run uses `chainrule.fit` for `EPOCHS` epochs (patience = EPOCHS, so it
never stops early). `fit` returns the best-validation weights; the final-epoch weights come
from `RecordingMADE`, which copies its weights whenever the trainer scores it on validation
data (the end of every epoch). ("last.ckpt" can't be used for this: with Lightning 2.6 it is
only rewritten when validation improves, so it holds the best epoch too.) "Early stopping" is
the best-validation model of the unregularised run, which is what early stopping with enough
patience returns. Its validation NLL was used to choose it, so the untouched test NLL is
reported as well (JSON and docs/experiments.md).

Run: OMP_NUM_THREADS=1 python examples/overfitting_digits.py
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import quick_or, save_figure, save_json

import chainrule
from chainrule.evaluation import evaluate_nll
from chainrule.models import MADE

HIDDEN = quick_or([8, 32, 128, 512], [32])
TRAIN_SIZE = 200
EPOCHS = quick_or(80, 8)
WEIGHT_DECAY = 1e-2
LR = 1e-2
BATCH_SIZE = 32
SEED = 0


class RecordingMADE(MADE):
    """MADE (one mask) that, each time validation scores it (end of every epoch), keeps a copy of its
    weights and its exact NLL on `watch` (the training set)."""

    watch: torch.Tensor | None = None

    def validation_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        self.last_state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        if self.watch is not None:
            self.train_curve.append(float(-self.log_prob(self.watch).mean()))
        return self.log_prob(x)


def nlls(model: MADE, d: chainrule.data.Dataset) -> dict[str, float]:
    return {s: evaluate_nll(model, d.split(s)).nll_nats for s in ("train", "val", "test")}


def run(d, hidden: int, weight_decay: float) -> dict:
    """One fit; NLLs of the final and of the best-validation model, and the validation curve."""
    torch.manual_seed(SEED)
    model = RecordingMADE(d.dim, hidden=[hidden])
    model.watch, model.train_curve = d.train, []
    config = chainrule.TrainConfig(
        max_epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        lr=LR,
        weight_decay=weight_decay,
        patience=EPOCHS,
        seed=SEED,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = chainrule.fit(model, d, config, tmp)
        best = nlls(model, d)  # fit leaves the best-validation weights in the model
        with open(next((Path(tmp) / "logs").glob("part*/metrics.csv"))) as f:
            curve = [float(r["val_nll"]) for r in csv.DictReader(f) if r.get("val_nll")]
    model.load_state_dict(model.last_state)
    final = nlls(model, d)
    train_curve = model.train_curve[-len(curve) :]  # drop Lightning's sanity-check pass
    best_epoch = int(np.argmin(curve))
    print(
        f"  hidden {hidden:4d}, weight decay {weight_decay:g}: final {final}, best epoch {best_epoch} {best}",
        flush=True,
    )
    return {
        "final": final,
        "best_val": best,
        "best_epoch": best_epoch,
        "val_curve": curve,
        "train_curve": train_curve,
        "num_parameters": model.num_parameters(),
        "epochs": result.epochs,
    }


def main() -> None:
    started = time.time()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    full = chainrule.load_dataset("digits")
    d = dataclasses.replace(full, train=full.train[:TRAIN_SIZE], name=f"digits (first {TRAIN_SIZE} train)")
    runs = {wd: {h: run(d, h, wd) for h in HIDDEN} for wd in (0.0, WEIGHT_DECAY)}

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    ax = axes[0]
    settings = {
        "no regularisation (final epoch)": (runs[0.0], "final", "C0"),
        f"weight decay {WEIGHT_DECAY:g} (final epoch)": (runs[WEIGHT_DECAY], "final", "C2"),
        "early stopping (best validation epoch)": (runs[0.0], "best_val", "C3"),
    }
    for label, (r, which, color) in settings.items():
        ax.plot(HIDDEN, [r[h][which]["train"] for h in HIDDEN], "o-", color=color, label=f"{label}: train")
        ax.plot(
            HIDDEN, [r[h][which]["val"] for h in HIDDEN], "s--", color=color, label=f"{label}: validation"
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(HIDDEN, [str(h) for h in HIDDEN])
    ax.set_xlabel("MADE hidden units (one layer)")
    ax.set_ylabel("NLL (nats per digit)")
    ax.set_title(f"{TRAIN_SIZE} training digits, {EPOCHS} epochs, Adam lr {LR:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, h in enumerate(HIDDEN):
        for wd, ls in ((0.0, "-"), (WEIGHT_DECAY, ":")):
            curve = runs[wd][h]["val_curve"]
            ax.plot(range(len(curve)), curve, ls, color=f"C{i}", label=f"hidden {h}, wd {wd:g}")
        b = runs[0.0][h]["best_epoch"]
        ax.plot([b], [runs[0.0][h]["val_curve"][b]], "k|", ms=12)
    ax.set_ylim(min(min(r[h]["val_curve"]) for r in runs.values() for h in HIDDEN) - 0.5, 24)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NLL (nats per digit)")
    ax.set_title("validation curves (| = best epoch without weight decay)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    h = HIDDEN[-1]
    for wd, color in ((0.0, "C0"), (WEIGHT_DECAY, "C2")):
        r = runs[wd][h]
        ax.plot(r["train_curve"], "-", color=color, label=f"train, weight decay {wd:g}")
        ax.plot(r["val_curve"], "--", color=color, label=f"validation, weight decay {wd:g}")
    b = runs[0.0][h]["best_epoch"]
    ax.axvline(b, color="C3", lw=0.8, ls=":", label=f"early stopping point (epoch {b})")
    ax.set_ylim(min(runs[0.0][h]["train_curve"]) - 0.5, max(runs[0.0][h]["val_curve"][5:]) + 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats per digit)")
    ax.set_title(f"hidden {h}: train and validation NLL per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("Overfitting and regularisation: MADE on binary 8x8 digits", y=1.02)
    save_figure(fig, "overfitting_digits")
    save_json(
        "overfitting_digits",
        {
            "data": f"digits (binary, 64 dims): first {TRAIN_SIZE} of the fixed train split; val, test 270",
            "train_config": {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "lr": LR, "seed": SEED},
            "weight_decay": WEIGHT_DECAY,
            "hidden": HIDDEN,
            "runs": {f"weight_decay={wd:g}": {str(h): r for h, r in rs.items()} for wd, rs in runs.items()},
        },
        started,
    )


if __name__ == "__main__":
    main()
