"""Named datasets with fixed splits: `load_dataset(name)`; `DATASETS` lists the names.

`load_dataset("csv:PATH")` reads your own CSV file of integer codes (see `chainrule.data.csv_file`);
`load_dataset("mmap:PATH")` opens an on-disk array dataset (chainrule.data.arrays) that is read
lazily, for data larger than memory.
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
#: Prefix of a dataset name that is an on-disk array folder: "mmap:PATH".
MMAP_PREFIX = "mmap:"


def load_dataset(name: str) -> Dataset:
    """Load a named dataset, `csv:PATH` for a CSV file of integer codes, or `mmap:PATH` for an
    array folder; unknown names give the list of known ones."""
    if not isinstance(name, str):
        raise ChainruleError(f"a dataset name must be a string, got {type(name).__name__}")
    if name.startswith(CSV_PREFIX):
        return csv_dataset(name[len(CSV_PREFIX) :])
    if name.startswith(MMAP_PREFIX):
        from chainrule.data.arrays import open_array_dataset

        return open_array_dataset(name[len(MMAP_PREFIX) :])
    if name not in DATASETS:
        raise ChainruleError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, csv:PATH for your own"
            " file, or mmap:PATH for an array folder"
        )
    return DATASETS[name]()


__all__ = ["CSV_PREFIX", "DATASETS", "MMAP_PREFIX", "Dataset", "csv_dataset", "load_dataset"]
