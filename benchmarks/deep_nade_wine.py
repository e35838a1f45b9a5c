"""Deep order-agnostic RNADE (`deep-rnade`, Uria et al. 2014) on red and white wine, 10 folds: the
mean test log-likelihood of the 16-ordering ensemble (EoRNADE, the paper's figure) and of a
single ordering, per fold, with training time. Writes benchmarks/results/deep_nade_wine.json.

    python -m benchmarks.deep_nade_wine              # 10 folds of both wines
    python -m benchmarks.deep_nade_wine --folds 1    # fold 0 only
    python -m benchmarks.deep_nade_wine --search red # the fold-0 validation search behind SETTINGS
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
import time

import torch

from benchmarks.common import write_result
from chainrule.data.continuous import wine
from chainrule.models import DeepRNADE
from chainrule.training import TrainConfig, fit

#: chosen on fold-0 validation data of each wine (`--search`)
SETTINGS = {
    "red": {"hidden": 100, "layers": 2, "components": 10},
    "white": {"hidden": 100, "layers": 2, "components": 10},
}
TRAIN = {
    "red": {
        "batch_size": 100,
        "max_epochs": 400,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "cosine",
        "patience": 60,
    },
    "white": {
        "batch_size": 100,
        "max_epochs": 400,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "cosine",
        "patience": 60,
    },
}
PUBLISHED = {"red": -8.76, "white": -9.67}  # EoRNADE, Uria, Murray & Larochelle 2014
NUM_ORDERINGS = 16


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    v = values.double()
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def stderr(v: torch.Tensor) -> float:
    """Standard error of the mean of the per-fold figures (0 for one fold)."""
    return float(v.std() / math.sqrt(len(v))) if len(v) > 1 else 0.0


def train_fold(color: str, fold: int, settings: dict, train: dict, seed: int = 0) -> dict:
    """Train `deep-rnade` on one fold; validation and test log-likelihoods of the ensemble and of
    the first ordering alone, epochs and seconds."""
    data = wine(color, fold)
    model = DeepRNADE(data.dim, num_orderings=NUM_ORDERINGS, seed=seed, **settings)
    cfg = TrainConfig(**{**train, "seed": seed, "progress": False})
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(model, data, cfg, tmp)
    seconds = time.time() - t0
    with torch.no_grad():
        out = {"fold": fold, "epochs": result.epochs, "seconds": seconds}
        for split in ("val", "test"):
            x = getattr(data, split)
            ens = mean_and_stderr(model.log_prob(x))
            one = mean_and_stderr(model.log_prob(x, num_orderings=1))
            out[split] = {"ensemble": ens[0], "ensemble_se": ens[1], "single": one[0], "single_se": one[1]}
    return out


def run_folds(color: str, folds: int) -> dict:
    rows = []
    for fold in range(folds):
        row = train_fold(color, fold, SETTINGS[color], TRAIN[color])
        rows.append(row)
        t = row["test"]
        print(
            f"{color} fold {fold}: ensemble {t['ensemble']:.3f} single {t['single']:.3f}"
            f" ({row['epochs']} epochs, {row['seconds']:.0f} s)",
            flush=True,
        )
    ens = torch.tensor([r["test"]["ensemble"] for r in rows], dtype=torch.float64)
    one = torch.tensor([r["test"]["single"] for r in rows], dtype=torch.float64)
    return {
        "settings": SETTINGS[color],
        "train": TRAIN[color],
        "num_orderings": NUM_ORDERINGS,
        "folds": rows,
        "average_test_log_likelihood": {"ensemble": float(ens.mean()), "single": float(one.mean())},
        "stderr_over_folds": {"ensemble": stderr(ens), "single": stderr(one)},
        "mean_seconds_per_fold": sum(r["seconds"] for r in rows) / len(rows),
        "published": PUBLISHED[color],
    }


SEARCH = {
    "hidden": [100, 300],
    "layers": [1, 2],
    "components": [5, 10, 20],
    "weight_decay": [0.0, 1e-4],
}


def search(color: str) -> dict:
    """Fold-0 grid over SEARCH; ranks by the validation log-likelihood of the ensemble."""
    rows = []
    keys = list(SEARCH)
    for values in itertools.product(*SEARCH.values()):
        grid = dict(zip(keys, values))
        settings = {k: grid[k] for k in ("hidden", "layers", "components")}
        train = {**TRAIN[color], "weight_decay": grid["weight_decay"]}
        row = train_fold(color, 0, settings, train)
        rows.append({**grid, **row})
        print(
            f"{color} {grid}: val ens {row['val']['ensemble']:.3f} single {row['val']['single']:.3f}"
            f" ({row['epochs']} ep, {row['seconds']:.0f} s)",
            flush=True,
        )
    rows.sort(key=lambda r: -r["val"]["ensemble"])
    return {"grid": SEARCH, "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10, help="folds to run per wine (1-10)")
    parser.add_argument("--colors", default="red,white", help="which wines, comma-separated")
    parser.add_argument("--search", metavar="COLOR", help="run the fold-0 validation search instead")
    parser.add_argument("--name", default="deep_nade_wine", help="results file name (no .json)")
    args = parser.parse_args()
    t0 = time.time()
    if args.search:
        result = {"search": search(args.search)}
    else:
        colors = args.colors.split(",")
        result = {
            "model": "deep-rnade",
            "units": "mean test log-likelihood, nats per wine (higher: better)",
            "wine": {c: run_folds(c, args.folds) for c in colors},
        }
    result["seconds"] = time.time() - t0
    path = write_result(args.name, result)
    print(f"wrote {path} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
