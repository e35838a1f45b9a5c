"""Deep order-agnostic RNADE (`deep-rnade`, Uria et al. 2014) on red and white wine, 10 folds: the
mean test log-likelihood of the 16-ordering ensemble (EoRNADE, the paper's figure) and of a
single ordering, per fold, with training time. Writes benchmarks/results/deep_nade_wine.json.

    python -m benchmarks.deep_nade_wine              # 10 folds of both wines
    python -m benchmarks.deep_nade_wine --folds 1    # fold 0 only
    python -m benchmarks.deep_nade_wine --search     # the fold-0 validation runs behind SETTINGS
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import write_result
from chainrule.data.continuous import wine
from chainrule.models import DeepRNADE
from chainrule.training import TrainConfig, fit

#: chosen on fold-0 validation data of red wine (`--search`, SEARCH_RUNS); white uses the same network
SETTINGS = {
    "red": {"hidden": 300, "layers": 2, "components": 10, "validation_orderings": 4},
    "white": {"hidden": 300, "layers": 2, "components": 10, "validation_orderings": 4},
}
#: white has 3x the rows (3x the steps per epoch), so a fold at 800 epochs takes ~18 minutes on one
#: thread; at 200 epochs (patience 40) the 10-fold mean was -9.94, still improving (see the probe file)
TRAIN = {
    "red": {
        "batch_size": 100,
        "max_epochs": 800,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "lr_schedule": "cosine",
        "patience": 100,
    },
    "white": {
        "batch_size": 100,
        "max_epochs": 800,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "lr_schedule": "cosine",
        "patience": 100,
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
    model = DeepRNADE(data.dim, num_orderings=NUM_ORDERINGS, seed=seed, natural_first=True, **settings)
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


def run_folds(color: str, folds: list[int]) -> dict:
    rows = []
    for fold in folds:
        row = train_fold(color, fold, SETTINGS[color], TRAIN[color])
        rows.append(row)
        t = row["test"]
        print(
            f"{color} fold {fold}: ensemble {t['ensemble']:.3f} single {t['single']:.3f}"
            f" ({row['epochs']} epochs, {row['seconds']:.0f} s)",
            flush=True,
        )
    return summarise(color, rows)


def summarise(color: str, rows: list[dict]) -> dict:
    """The per-wine result: the fold rows, their mean test log-likelihoods and standard errors."""
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


BASE = {
    "batch_size": 100,
    "max_epochs": 400,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "lr_schedule": "cosine",
    "patience": 60,
}
#: the fold-0 runs behind SETTINGS, in the order they were run: (wine, network, training changes)
SEARCH_RUNS = [
    ("red", {"hidden": 100, "layers": 2, "components": 10}, {}),
    ("red", {"hidden": 100, "layers": 2, "components": 10}, {"max_epochs": 1000, "patience": 150}),
    ("red", {"hidden": 300, "layers": 2, "components": 10}, {}),
    ("red", {"hidden": 100, "layers": 1, "components": 10}, {}),
    ("red", {"hidden": 100, "layers": 2, "components": 20}, {}),
    ("red", {"hidden": 100, "layers": 2, "components": 10, "min_scale": 1e-5}, {}),
    ("red", {"hidden": 300, "layers": 2, "components": 10}, {"weight_decay": 1e-4}),
    ("red", {"hidden": 100, "layers": 2, "components": 10}, {"lr": 3e-3}),
    ("red", {"hidden": 100, "layers": 2, "components": 5}, {}),
    ("red", {"hidden": 300, "layers": 2, "components": 10}, {"lr": 3e-3, "weight_decay": 1e-4}),
    (
        "red",
        {"hidden": 500, "layers": 2, "components": 10, "validation_orderings": 4},
        {"lr": 3e-3, "weight_decay": 1e-4},
    ),
    (
        "white",
        {"hidden": 300, "layers": 2, "components": 10, "validation_orderings": 4},
        {"lr": 3e-3, "weight_decay": 1e-4, "max_epochs": 200, "patience": 40},
    ),
    (
        "red",
        {"hidden": 300, "layers": 2, "components": 20, "validation_orderings": 4},
        {"lr": 3e-3, "weight_decay": 1e-4},
    ),
    (
        "red",
        {"hidden": 300, "layers": 2, "components": 10, "validation_orderings": 4},
        {"lr": 3e-3, "weight_decay": 1e-4, "max_epochs": 800, "patience": 100},
    ),
]


def search() -> dict:
    """Re-run SEARCH_RUNS on fold 0; ranked by the validation log-likelihood of the ensemble."""
    rows = []
    for color, settings, changes in SEARCH_RUNS:
        row = train_fold(color, 0, settings, {**BASE, **changes})
        rows.append({"wine": color, "settings": settings, "train": {**BASE, **changes}, **row})
        print(f"{color} {settings} {changes}: val ensemble {row['val']['ensemble']:.3f}", flush=True)
    return {"runs": sorted(rows, key=lambda r: -r["val"]["ensemble"])}


def combine(paths: list[str], colors: list[str]) -> dict:
    """Merge the fold rows of partial runs (`--fold-ids`) into one result per wine. Runs of other
    settings than SETTINGS/TRAIN are left out (and said so); a fold seen twice is refused."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    wines = {}
    for color in colors:
        parts = []
        for path, run in zip(paths, runs):
            part = run.get("wine", {}).get(color)
            if part is None:
                continue
            if part["settings"] != SETTINGS[color] or part["train"] != TRAIN[color]:
                print(f"{color}: left out {path} (other settings than SETTINGS/TRAIN)")
                continue
            parts.append(part)
        rows = sorted((row for part in parts for row in part["folds"]), key=lambda r: r["fold"])
        if len({r["fold"] for r in rows}) != len(rows):
            raise SystemExit(f"{color}: a fold appears in more than one run")
        wines[color] = summarise(color, rows)
    return {
        "model": "deep-rnade",
        "units": "mean test log-likelihood, nats per wine (higher: better)",
        "wine": wines,
        "combined_from": [r["machine"]["date"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10, help="folds to run per wine (1-10)")
    parser.add_argument(
        "--fold-ids",
        help="run only these folds, comma-separated (e.g. 2,3,4 to share 10 folds between processes)",
    )
    parser.add_argument(
        "--combine",
        help="instead of training, merge the fold rows of these result files (comma-separated,"
        " same wine and settings) into one result",
    )
    parser.add_argument("--colors", default="red,white", help="which wines, comma-separated")
    parser.add_argument(
        "--search", action="store_true", help="re-run the fold-0 search (SEARCH_RUNS) instead"
    )
    parser.add_argument("--name", help="results file name (default deep_nade_wine[_search])")
    args = parser.parse_args()
    t0 = time.time()
    colors = args.colors.split(",")
    folds = [int(f) for f in args.fold_ids.split(",")] if args.fold_ids else list(range(args.folds))
    if args.search:
        result = {"search": search()}
    elif args.combine:
        result = combine(args.combine.split(","), colors)
    else:
        result = {
            "model": "deep-rnade",
            "units": "mean test log-likelihood, nats per wine (higher: better)",
            "wine": {c: run_folds(c, folds) for c in colors},
        }
    result["seconds"] = time.time() - t0
    path = write_result(args.name or ("deep_nade_wine_search" if args.search else "deep_nade_wine"), result)
    print(f"wrote {path} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
