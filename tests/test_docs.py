"""The documentation site: every code block is marked, every executed block runs, the strict build passes.

The build here leaves out code execution (the per-page test runs the blocks); `make docs` runs both.

`make docs-test` runs these (and the Getting-started test) alone; they are also part of `make test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from docs_blocks import DOCS, ROOT, code_blocks, pages, run_page

pytestmark = pytest.mark.docs

NOT_RUN = {"bash", "text", "yaml", "csv"}
EXECUTED_PAGES = [p for p in pages() if any(b.executed for b in code_blocks(p))]


def test_every_code_block_is_marked() -> None:
    """Python blocks run in the build; every other block says what it is (shell, file, output)."""
    bad = []
    for page in pages():
        for b in code_blocks(page):
            if b.lang == "python" and not b.executed:
                bad.append(f'{b.where()}: python block without exec="on" (make it run or show it as text)')
            elif b.lang != "python" and b.lang not in NOT_RUN:
                bad.append(f"{b.where()}: block language {b.lang!r}; use python or one of {sorted(NOT_RUN)}")
    assert not bad, "\n".join(bad)


def test_the_guide_has_executed_code() -> None:
    guide = [p for p in EXECUTED_PAGES if p.parent.name in ("guide", "getting-started")]
    assert len(guide) >= 7, [str(p) for p in guide]


@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_blocks_run(page) -> None:
    outputs = run_page(page)
    assert outputs, f"{page} has no executed block"


def site_config_without_execution(tmp_path: Path) -> Path:
    """mkdocs.yml less the markdown-exec plugin: the build checks pages, links and API reference only.

    The executed blocks already run once in `test_page_code_blocks_run` (as the build would run them);
    running them again inside the build cost 35 of the suite's seconds. `make docs` builds with them.
    """
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["plugins"] = [p for p in config["plugins"] if p != "markdown-exec"]
    config["docs_dir"] = str(DOCS)
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_site_builds_in_strict_mode(tmp_path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    config = site_config_without_execution(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "-q",
        "-f",
        str(config),
        "-d",
        str(tmp_path / "site"),
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert "WARNING" not in log and "ERROR" not in log, log
    site = tmp_path / "site"
    built = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for page in pages():  # the offline plugin writes a/b.md to a/b.html (no directory URLs)
        assert page.relative_to(DOCS).with_suffix(".html").as_posix() in built, f"{page} was not built"
