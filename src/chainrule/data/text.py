"""Token sequences for language models: a character tokenizer and the sequence dataset record.

Unknown characters are an explicit error, never silently mapped: the vocabulary is every
character of the data set's text (all of a user's file; the training plays for Shakespeare), it
is stored with the model (config.json, `vocab`), and
encoding a prompt or an evaluation text with a character outside it raises a `ChainruleError`
that names the characters. (A reserved "unknown" token would get no training signal, so its
probability would be meaningless, and a prompt containing it would condition the model on
something it has never seen.)

`text_file(path)` reads any UTF-8 text file and splits it by character offset into
90 % / 5 % / 5 % train/validation/test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from chainrule.errors import ChainruleError
from chainrule.tokenizer import CharTokenizer

#: Fractions of a user's text file used for validation and test (the last 5 % + 5 %).
VAL_FRACTION = 0.05
TEST_FRACTION = 0.05
#: The smallest text file that gives non-empty splits.
MIN_CHARS = 100


@dataclass
class SequenceDataset:
    """Train/validation/test as 1-D int64 token streams (text or audio) of `num_values` symbols.

    `tokenizer` is set for text (None for audio); `texts` keeps the raw splits so evaluation can
    re-encode them with a trained model's own vocabulary.
    """

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    num_values: int
    tokenizer: CharTokenizer | None = None
    texts: dict[str, str] = field(default_factory=dict)
    sample_rate: int | None = None
    description: str = ""

    @property
    def image_shape(self) -> None:
        """Token streams are never images (declared, so callers need not check the class)."""
        return None

    @property
    def unit(self) -> str:
        return "char" if self.tokenizer is not None else "sample"

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val", "test"):
            raise ChainruleError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)

    def encoded(self, name: str, tokenizer: CharTokenizer | None) -> torch.Tensor:
        """A split encoded with `tokenizer` (a model's vocabulary), or as stored when None."""
        x = self.split(name)
        if tokenizer is None or self.tokenizer is None or tokenizer.vocab == self.tokenizer.vocab:
            return x
        return tokenizer.encode(self.texts[name], what=f"the {name} split of {self.name}")


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 text file; empty or non-UTF-8 files are a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"text file {str(path)!r} not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ChainruleError(
            f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start});"
            " convert it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise ChainruleError(f"{path} is empty (no characters other than white space)")
    return text


def dataset_from_splits(
    name: str, texts: dict[str, str], description: str, tokenizer: CharTokenizer | None = None
) -> SequenceDataset:
    """Tokenize train/val/test with a vocabulary built from the training text only (or with
    `tokenizer`, e.g. a trained model's, to evaluate it on this text)."""
    tok = tokenizer or CharTokenizer.from_text(texts["train"])
    enc = {s: tok.encode(t, what=f"the {s} split of {name}") for s, t in texts.items()}
    return SequenceDataset(
        name=name,
        train=enc["train"],
        val=enc["val"],
        test=enc["test"],
        num_values=len(tok),
        tokenizer=tok,
        texts=texts,
        description=description,
    )


def text_file(path: str | os.PathLike, tokenizer: CharTokenizer | None = None) -> SequenceDataset:
    """A user's text file: first 90 % train, next 5 % validation, last 5 % test (by character).

    The vocabulary is every character of the whole file, so a rare character that happens to
    fall only in the validation or test part can still be scored (the model learns to give it
    little probability) instead of stopping the run. Only the set of characters is shared; the
    model never sees the held-out text.
    """
    text = read_text(path)
    if len(text) < MIN_CHARS:
        raise ChainruleError(f"{path} has {len(text)} characters; at least {MIN_CHARS} are needed")
    n = len(text)
    a, b = round(n * (1 - VAL_FRACTION - TEST_FRACTION)), round(n * (1 - TEST_FRACTION))
    texts = {"train": text[:a], "val": text[a:b], "test": text[b:]}
    if tokenizer is None:
        tokenizer = CharTokenizer.from_text(text)
    return dataset_from_splits(
        f"text:{path}", texts, f"{path}: {a:,} / {b - a:,} / {n - b:,} characters train/val/test", tokenizer
    )
