"""Code blocks of the documentation pages: parsing, and running the executed ones as the build does.

Conventions (checked by tests/test_docs.py):
- ```python exec="on" ...```: run by the build (markdown-exec), which shows its output; blocks with
  the same `session="..."` on a page share their variables, in page order.
- ```bash```: shell commands for the reader; the Getting-started ones are run by
  tests/test_getting_started.py, except blocks titled "install ..." (they set up a fresh checkout).
- ```text```, ```yaml```, ```csv```: file contents or printed output, never run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})(?P<info>.*)$")
ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    attrs: dict[str, str] = field(default_factory=dict)
    code: str = ""

    @property
    def executed(self) -> bool:
        return self.lang == "python" and self.attrs.get("exec") in ("on", "1", "true")

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown page, top-level or indented."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        info, indent, ticks = m["info"].strip(), m["indent"], m["ticks"]
        lang = info.split()[0].lstrip("{.") if info else ""
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip() == ticks and lines[j].startswith(indent)):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append(Block(path, i + 1, lang, dict(ATTR.findall(info)), "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def run_page(path: Path) -> dict[str, str]:
    """Run the page's executed blocks in order, as markdown-exec does (same working directory, one
    namespace per session); return each block's printed output, keyed by its location."""
    import torch

    namespaces: dict[str, dict] = {}
    outputs: dict[str, str] = {}
    old, threads = os.getcwd(), torch.get_num_threads()
    os.chdir(ROOT)
    torch.set_num_threads(1)  # as `make docs` runs them (OMP_NUM_THREADS=1): small ops, shared cores
    try:
        for block in code_blocks(path):
            if not block.executed:
                continue
            session = block.attrs.get("session")
            ns = namespaces.setdefault(session, {}) if session else {}
            ns.setdefault("__name__", "__main__")
            buf = io.StringIO()
            code = compile(block.code, block.where(), "exec")
            with contextlib.redirect_stdout(buf):
                exec(code, ns)
            outputs[block.where()] = buf.getvalue()
    finally:
        os.chdir(old)
        torch.set_num_threads(threads)
    return outputs
