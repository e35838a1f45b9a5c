"""Named datasets with fixed splits: `load_dataset(name)`; `DATASETS` lists the names.

`load_dataset("csv:PATH")` reads your own CSV file of integer codes (see `chainrule.data.csv_file`).
"""

from __future__ import annotations

from collections.abc import Callable

from chainrule.data.base import Dataset
from chainrule.data.continuous import faithful, wine
from chainrule.data.csv_file import csv_dataset
from chainrule.data.digits import digits
from chainrule.data.mnist import binarized_mnist
from chainrule.data.synthetic import bars
from chainrule.errors import ChainruleError

DATASETS: dict[str, Callable[[], Dataset]] = {
    "binarized-mnist": binarized_mnist,
    "digits": lambda: digits(2),
    "digits-17": lambda: digits(17),
    "bars-3": lambda: bars(3),
    "bars-4": lambda: bars(4),
    "faithful": faithful,
    "wine-red": lambda: wine("red"),
    "wine-white": lambda: wine("white"),
}


#: Prefix of a dataset name that is a path to your own CSV file: "csv:PATH".
CSV_PREFIX = "csv:"


def load_dataset(name: str) -> Dataset:
    """Load a named dataset, or `csv:PATH` for a CSV file of integer codes; unknown names give the
    list of known ones."""
    if name.startswith(CSV_PREFIX):
        return csv_dataset(name[len(CSV_PREFIX) :])
    if name not in DATASETS:
        raise ChainruleError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, or csv:PATH for your own file"
        )
    return DATASETS[name]()


__all__ = ["CSV_PREFIX", "DATASETS", "Dataset", "csv_dataset", "load_dataset"]
