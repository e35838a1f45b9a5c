"""The course map (docs/course.md) covers every section heading of the notes' Modules 1 and 2, in order.

The notes live beside the repository (../shared/NOTES.md, or the file named by CHAINRULE_NOTES); where
they are present, their headings must equal the committed copy in tests/data, so a section added to
the notes shows up here. The committed copy is always checked against the page, so CI (without the
notes) still fails when a row goes missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from docs_blocks import DOCS, ROOT

pytestmark = pytest.mark.docs

COPY = ROOT / "tests" / "data" / "notes_headings_modules_1_2.txt"
COURSE = DOCS / "course.md"


def notes_path() -> Path:
    return Path(os.environ.get("CHAINRULE_NOTES") or ROOT.parent / "shared" / "NOTES.md")


def normalise(heading: str) -> str:
    """A heading as text: no leading #s, bold marks or $ signs, single spaces, lower case."""
    text = re.sub(r"^#+\s*", "", heading)
    text = re.sub(r"[*$]", "", text).replace("\\|", "|")
    return " ".join(text.split()).lower()


def headings_of_modules_1_2(notes: str) -> list[str]:
    """The ##, ### and #### headings from '## Module 1' up to (not including) '## Module 3'."""
    out: list[str] = []
    on = False
    for line in notes.splitlines():
        if re.match(r"^## Module 1\b", line):
            on = True
        elif re.match(r"^## Module 3\b", line):
            on = False
        if on and re.match(r"^#{2,4} ", line):
            out.append(line.rstrip())
    return out


def course_rows() -> list[str]:
    """The first cell of every table row of the course map, normalised."""
    rows = []
    for line in COURSE.read_text().splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            cell = re.split(r"(?<!\\)\|", line)[1]
            rows.append(normalise(cell))
    return rows


def test_the_committed_heading_list_matches_the_notes() -> None:
    path = notes_path()
    if not path.exists():
        pytest.skip(f"the notes are not beside this checkout ({path}); the committed copy is checked instead")
    expected = COPY.read_text().splitlines()
    assert headings_of_modules_1_2(path.read_text()) == expected, (
        f"the headings of {path} changed: update {COPY.relative_to(ROOT)} and docs/course.md"
    )


def test_every_heading_of_modules_1_2_is_on_the_course_map_in_order() -> None:
    headings = [normalise(h) for h in COPY.read_text().splitlines()]
    assert len(headings) >= 40, len(headings)
    rows = course_rows()
    missing = [h for h in headings if h not in rows]
    assert not missing, "sections of the notes missing from docs/course.md:\n" + "\n".join(missing)
    positions = [rows.index(h) for h in headings]
    assert positions == sorted(positions), "docs/course.md lists the notes' sections out of order"


def test_every_row_says_where_to_read_it() -> None:
    """Each section row links at least one page of the site."""
    cells = [
        re.split(r"(?<!\\)\|", line)
        for line in COURSE.read_text().splitlines()
        if line.startswith("|") and not re.match(r"^\|\s*-", line) and "Notes section" not in line
    ]
    bare = [c[1].strip() for c in cells if "](" not in c[2]]
    assert not bare, f"rows without a page to read: {bare}"


#: the course's pages: the user guide, and the task pages that docs/course.md links
COURSE_PAGES = sorted((DOCS / "guide").glob("*.md")) + sorted((DOCS / "tasks").glob("*.md"))


def test_the_course_pages_are_found() -> None:
    assert {p.parent.name for p in COURSE_PAGES} == {"guide", "tasks"}, COURSE_PAGES


@pytest.mark.parametrize("page", COURSE_PAGES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_course_page_ends_with_exercises_and_executed_solutions(page: Path) -> None:
    """1-3 numbered exercises under '## Exercises' (a '## References' list may follow), and at least
    one solution block that the build runs (tests/test_docs.py runs it too)."""
    from docs_blocks import code_blocks

    text = page.read_text()
    assert "\n## Exercises\n" in text, f"{page.name} has no '## Exercises' section"
    start = text.index("\n## Exercises\n")
    later = re.findall(r"^## .*$", text[start + 1 :], re.MULTILINE)[1:]
    assert later in ([], ["## References"]), f"{page.name}: sections after '## Exercises': {later}"
    end = text.index("\n## References\n", start) if later else len(text)
    section = text[start:end]
    numbered = re.findall(r"^\d\. ", section, re.MULTILINE)
    assert 1 <= len(numbered) <= 3, f"{page.name}: {len(numbered)} exercises"
    first_line = text[:start].count("\n") + 2
    last_line = text[:end].count("\n") + 1
    solutions = [b for b in code_blocks(page) if b.executed and first_line < b.line < last_line]
    assert solutions, f"{page.name}: no executed solution after '## Exercises'"
