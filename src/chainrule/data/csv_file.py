"""Your own data from a CSV file: `load_dataset("csv:PATH")`, or `data: {name: csv:PATH}` in a recipe.

Every cell must be a non-negative integer code: 0/1 columns give a binary dataset (a Bernoulli
head), codes 0..K-1 a K-ary one (Categorical head, K = largest code + 1 over the whole file,
at most `MAX_VALUES`). The first row is a header when any of its cells is not an integer;
otherwise the columns are named x0, x1, ... Empty cells, words, fractions and negative numbers
are refused with the row and column that hold them: encode categories as integers first.

The split is fixed and deterministic: the rows are shuffled with `numpy.random.default_rng(SPLIT_SEED)`
and cut 80 % / 10 % / 10 % into train / validation / test (validation and test get at least one
row each), so the same file always gives the same split.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from chainrule.data.base import Dataset
from chainrule.errors import ChainruleError

#: Seed of the row shuffle that makes the train/validation/test split.
SPLIT_SEED = 0
#: Fractions of the rows that go to validation and to test (the rest is training data).
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
#: Fewest data rows accepted (train, validation and test each need some).
MIN_ROWS = 10
#: Largest number of values per column (K); a Categorical head has K logits per column.
MAX_VALUES = 256


def _is_int(cell: str) -> bool:
    """Whether a cell is an integer, of any length and sign (ASCII digits only)."""
    s = cell.strip()
    digits = s[1:] if s[:1] in "+-" else s
    return digits.isascii() and digits.isdigit()


def _code(cell: str, max_values: int) -> int | None:
    """The code of a cell that is an integer in [0, max_values), or None. (Looked at as text first:
    a code beyond int64 would overflow the array, and int() refuses over 4,300 digits.)"""
    s = cell.strip()
    if not _is_int(s) or s[0] == "-" and s[1:].strip("0"):
        return None
    digits = s.lstrip("+-").lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 and int(digits) < max_values else max_values


def read_csv_codes(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """The integer codes (rows, columns) of a CSV file and its column names, validated."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"CSV file {str(path)!r} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ChainruleError(f"{path} is not a readable CSV text file ({e})") from None
    if not rows:
        raise ChainruleError(f"{path} is empty")
    header = [c.strip() for c in rows[0]]
    has_header = not all(_is_int(c) for c in header)
    columns = header if has_header else [f"x{i}" for i in range(len(header))]
    body = rows[1:] if has_header else rows
    first_line = 2 if has_header else 1
    if len(set(columns)) != len(columns) or not all(columns):
        raise ChainruleError(f"{path}: column names must be non-empty and unique, got {columns}")
    if len(body) < MIN_ROWS:
        raise ChainruleError(f"{path} has {len(body)} data row(s); at least {MIN_ROWS} are needed")
    codes = np.empty((len(body), len(columns)), dtype=np.int64)
    for i, row in enumerate(body):
        line = first_line + i
        if len(row) != len(columns):
            raise ChainruleError(f"{path}, line {line}: {len(row)} fields, expected {len(columns)}")
        for j, cell in enumerate(row):
            code = _code(cell, MAX_VALUES)
            if code is None:
                what = "an empty cell" if not cell.strip() else repr(cell[:40])
                raise ChainruleError(
                    f"{path}, line {line}, column {columns[j]!r}: {what} is not a non-negative integer;"
                    " every cell must be a code 0..K-1 (encode categories as integers, drop or fill"
                    " missing values first)"
                )
            if code >= MAX_VALUES:
                raise ChainruleError(
                    f"{path}, line {line}, column {columns[j]!r}: code {cell.strip()[:40]} is too"
                    f" large; at most {MAX_VALUES} values per column (codes 0..{MAX_VALUES - 1}) are"
                    " supported (bin or quantize wide numeric columns first)"
                )
            codes[i, j] = code
    return codes, columns


def split_rows(n: int) -> dict[str, np.ndarray]:
    """Row indices of the fixed train/val/test split of an n-row file (see the module docstring)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = max(1, round(VAL_FRACTION * n))
    n_test = max(1, round(TEST_FRACTION * n))
    n_train = n - n_val - n_test
    return {
        "train": np.sort(perm[:n_train]),
        "val": np.sort(perm[n_train : n_train + n_val]),
        "test": np.sort(perm[n_train + n_val :]),
    }


def csv_dataset(path: str | os.PathLike) -> Dataset:
    """A `Dataset` from a CSV file of integer codes, with the fixed 80/10/10 split."""
    codes, columns = read_csv_codes(path)
    num_values = max(int(codes.max()) + 1, 2)
    idx = split_rows(len(codes))
    t = {s: torch.from_numpy(codes[i]).float() for s, i in idx.items()}
    sizes = "/".join(str(len(i)) for i in idx.values())
    return Dataset(
        name=f"csv:{path}",
        train=t["train"],
        val=t["val"],
        test=t["test"],
        num_values=num_values,
        columns=columns,
        description=f"{path}: {len(codes)} rows x {len(columns)} columns, {num_values} values,"
        f" split {sizes} (shuffle seed {SPLIT_SEED})",
    )


def csv_rows(x: torch.Tensor, real: bool = False) -> bytes:
    """Rows of integer codes (N, D) - or, with `real`, real values at full precision - as CSV
    lines (no header): what `write_csv_codes` writes, one chunk at a time for streaming."""
    x = x.detach().cpu().reshape(x.shape[0], -1)
    rows = [[repr(v) for v in r] for r in x.double().tolist()] if real else x.round().long().tolist()
    return "".join(",".join(map(str, r)) + "\n" for r in rows).encode()


def csv_header(dim: int, columns: list[str] | None = None) -> bytes:
    """The header line: `columns`, or x0, x1, ... for `dim` columns."""
    return (",".join(columns or [f"x{i}" for i in range(dim)]) + "\n").encode()


def write_csv_codes(
    path: str | os.PathLike, x: torch.Tensor, columns: list[str] | None = None, real: bool = False
) -> Path:
    """Write integer codes (N, D) — or, with `real`, real values at full precision — as a CSV file
    with a header row (x0, x1, ... by default)."""
    from chainrule.persistence import atomic_write_bytes

    x = x.detach().cpu().reshape(x.shape[0], -1)
    atomic_write_bytes(path, csv_header(x.shape[1], columns) + csv_rows(x, real))
    return Path(path)
