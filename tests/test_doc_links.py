"""Every relative link of the documentation (docs/**/*.md) and of README.md resolves: the file exists,
and a `#anchor` into a Markdown page names one of its headings (slugged as the site build slugs them).

The strict site build checks the links between pages of the site, but not README.md, not links to files
outside docs/ (examples, recipes, tests), and it is slow; this test is quick and says where each broken
link is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_blocks import DOCS, ROOT, code_blocks

pytestmark = pytest.mark.docs

LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def markdown_files() -> list[Path]:
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks."""
    lines = path.read_text().splitlines()
    inside = set()
    for b in code_blocks(path):
        inside.update(range(b.line - 1, b.line + b.code.count("\n") + 1))
    return [(i + 1, line) for i, line in enumerate(lines) if i not in inside]


def slug(text: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (code marks and links dropped)."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[`*]", "", text)
    return slugify(text, "-")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a page, with toc's _1, _2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(path):
        m = HEADING.match(line)
        if not m:
            continue
        s = slug(m[1])
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}_{n}")
    return out


def broken_links(path: Path) -> list[str]:
    bad = []
    for number, line in prose_lines(path):
        for m in list(LINK.finditer(line)) + list(IMAGE.finditer(line)):
            target = m[1]
            if target.startswith(EXTERNAL) or target.startswith("<"):
                continue
            file_part, _, anchor = target.partition("#")
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                bad.append(f"{where} (no heading with anchor #{anchor} in {resolved.name})")
    return bad


def test_the_checker_sees_links_and_anchors() -> None:
    assert "the-contract" in anchors(DOCS / "index.md")
    assert LINK.findall("see [a (b)](x.md#y) and ![pic](p.png)") == ["x.md#y"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    bad = broken_links(path)
    assert not bad, "\n".join(bad)
