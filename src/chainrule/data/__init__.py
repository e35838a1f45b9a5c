"""Named datasets with fixed splits: `load_dataset(name)`; `DATASETS` lists the names.

`load_dataset("csv:PATH")` reads your own CSV file of integer codes (see `chainrule.data.csv_file`);
`load_dataset("mmap:PATH")` opens an on-disk array dataset (chainrule.data.arrays) that is read
lazily, for data larger than memory.
"""

from __future__ import annotations

from collections.abc import Callable

from chainrule.data import animal_silhouettes, colour_mnist, fashion_mnist  # modules, not their functions
from chainrule.data.base import Dataset
from chainrule.data.continuous import faithful, wine
from chainrule.data.csv_file import csv_dataset
from chainrule.data.digits import digits
from chainrule.data.mnist import binarized_mnist, mnist_8bit
from chainrule.data.shakespeare import shakespeare
from chainrule.data.synthetic import bars
from chainrule.data.text import SequenceDataset, text_file
from chainrule.data.wav import wav_file
from chainrule.errors import ChainruleError
from chainrule.greyscale import greyscale  # the colourisation condition, a data transform

DATASETS: dict[str, Callable[[], Dataset | SequenceDataset]] = {
    "binarized-mnist": binarized_mnist,
    "mnist-8bit": mnist_8bit,
    "fashion-mnist": fashion_mnist.fashion_mnist,
    "binarized-fashion-mnist": fashion_mnist.binarized_fashion_mnist,
    "animal-silhouettes": animal_silhouettes.animal_silhouettes,
    "binarized-animal-silhouettes": animal_silhouettes.binarized_animal_silhouettes,
    "colour-mnist": colour_mnist.colour_mnist,
    "colour-mnist-2": colour_mnist.colour_mnist_2,
    "digits": lambda: digits(2),
    "digits-17": lambda: digits(17),
    "bars-3": lambda: bars(3),
    "bars-4": lambda: bars(4),
    "faithful": faithful,
    "wine-red": lambda: wine("red"),
    "wine-white": lambda: wine("white"),
    "shakespeare": shakespeare,
}
#: Datasets named by a file: `text:PATH` (UTF-8 characters), `wav:PATH` (8-bit mu-law audio).
FILE_DATASETS: dict[str, Callable[[str], SequenceDataset]] = {"text": text_file, "wav": wav_file}


#: Prefix of a dataset name that is a path to your own CSV file: "csv:PATH".
CSV_PREFIX = "csv:"
#: Prefix of a dataset name that is an on-disk array folder: "mmap:PATH".
MMAP_PREFIX = "mmap:"


def load_dataset(name: str) -> Dataset | SequenceDataset:
    """Load a named dataset, `csv:PATH` (a CSV file of integer codes), `mmap:PATH` (an array
    folder), `text:PATH` or `wav:PATH`; unknown names give the list of known ones."""
    if not isinstance(name, str):
        raise ChainruleError(f"a dataset name must be a string, got {type(name).__name__}")
    if name.startswith(CSV_PREFIX):
        return csv_dataset(name[len(CSV_PREFIX) :])
    if name.startswith(MMAP_PREFIX):
        from chainrule.data.arrays import open_array_dataset

        return open_array_dataset(name[len(MMAP_PREFIX) :])
    kind, sep, path = name.partition(":")
    if sep and kind in FILE_DATASETS:
        if not path:
            raise ChainruleError(f"dataset {name!r} needs a file: {kind}:PATH")
        return FILE_DATASETS[kind](path)
    if name not in DATASETS:
        raise ChainruleError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, csv:PATH for your own"
            " file, mmap:PATH for an array folder, text:PATH or wav:PATH"
        )
    return DATASETS[name]()


__all__ = [
    "CSV_PREFIX",
    "DATASETS",
    "FILE_DATASETS",
    "MMAP_PREFIX",
    "Dataset",
    "SequenceDataset",
    "csv_dataset",
    "greyscale",
    "load_dataset",
]
