"""Character tokenizer: the vocabulary is the sorted set of characters of the training text.

Unknown characters are an explicit error, never silently mapped (see `chainrule.data.text`).
"""

from __future__ import annotations

from collections import Counter

import torch

from chainrule.errors import ChainruleError


class CharTokenizer:
    """Characters <-> ids 0..V-1 in sorted order; encoding an unknown character is an error."""

    def __init__(self, vocab: str) -> None:
        chars = sorted(set(vocab))
        if len(chars) < 2:
            raise ChainruleError(f"a vocabulary needs at least 2 distinct characters, got {vocab!r}")
        self.vocab = "".join(chars)
        self.index = {c: i for i, c in enumerate(self.vocab)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls("".join(set(text)))

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown(self, text: str) -> Counter:
        return Counter(c for c in text if c not in self.index)

    def encode(self, text: str, what: str = "text") -> torch.Tensor:
        """1-D int64 ids; a character outside the vocabulary raises a ChainruleError naming it."""
        bad = self.unknown(text)
        if bad:
            shown = ", ".join(f"{c!r} ({n}x)" for c, n in bad.most_common(8))
            raise ChainruleError(
                f"{what} has {len(bad)} character(s) outside the vocabulary: {shown}."
                f" The vocabulary is {self.vocab!r}"
            )
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.vocab[int(i)] for i in ids)
