"""Every experiment script in examples/ runs, with small settings, so its published picture cannot go stale.

Each script is run as the reader runs it (`python examples/NAME.py`), with CHAINRULE_EXAMPLES_QUICK=1
(its constants shrunk through `quick_or`, well under a minute) and CHAINRULE_EXAMPLES_OUT set to a
temporary folder, so the committed pictures in docs/experiments/ are never touched. A new script is
picked up by itself: every examples/*.py except the shared experiment_utils.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if p.name != "experiment_utils.py")
PUBLISHED = ROOT / "docs" / "experiments"

pytestmark = pytest.mark.examples


def test_there_are_experiment_scripts() -> None:
    assert len(SCRIPTS) >= 5, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs_quickly_without_touching_the_published_results(script: Path, tmp_path: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in PUBLISHED.glob("*")}
    env = {**os.environ, "CHAINRULE_EXAMPLES_QUICK": "1", "CHAINRULE_EXAMPLES_OUT": str(tmp_path)}
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"{script.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    written = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.endswith(".png") for n in written), f"{script.name} wrote no picture: {written}"
    for name in written:
        if name.endswith(".json"):
            assert json.loads((tmp_path / name).read_text())["meta"]["quick"] is True, name
    after = {p.name: p.stat().st_mtime_ns for p in PUBLISHED.glob("*")}
    assert after == before, f"{script.name} wrote into docs/experiments/ in a quick run"
