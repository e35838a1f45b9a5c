"""Named datasets with fixed splits: `load_dataset(name)`; `DATASETS` lists the names."""

from __future__ import annotations

from collections.abc import Callable

from chainrule.data.base import Dataset
from chainrule.data.digits import digits
from chainrule.data.mnist import binarized_mnist
from chainrule.data.shakespeare import shakespeare
from chainrule.data.synthetic import bars
from chainrule.data.text import SequenceDataset, text_file
from chainrule.data.wav import wav_file
from chainrule.errors import ChainruleError

DATASETS: dict[str, Callable[[], Dataset | SequenceDataset]] = {
    "binarized-mnist": binarized_mnist,
    "digits": lambda: digits(2),
    "digits-17": lambda: digits(17),
    "bars-3": lambda: bars(3),
    "bars-4": lambda: bars(4),
    "shakespeare": shakespeare,
}
#: Datasets named by a file: `text:PATH` (UTF-8 characters), `wav:PATH` (8-bit mu-law audio).
FILE_DATASETS: dict[str, Callable[[str], SequenceDataset]] = {"text": text_file, "wav": wav_file}


def load_dataset(name: str) -> Dataset | SequenceDataset:
    """Load a named dataset (or `text:PATH` / `wav:PATH`); unknown names list the known ones."""
    kind, sep, path = name.partition(":")
    if sep and kind in FILE_DATASETS:
        if not path:
            raise ChainruleError(f"dataset {name!r} needs a file: {kind}:PATH")
        return FILE_DATASETS[kind](path)
    if name not in DATASETS:
        raise ChainruleError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, text:PATH, wav:PATH"
        )
    return DATASETS[name]()


__all__ = ["DATASETS", "FILE_DATASETS", "Dataset", "SequenceDataset", "load_dataset"]
