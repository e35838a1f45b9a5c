"""A clean install from the wheel: `python -m build --wheel`, installed into an empty venv (no
system site-packages, no repository on the path), runs `chainrule --help`, `chainrule demo` and
loads the model folder the demo wrote, from a folder outside the repository. It downloads the
dependencies (torch, pinned, first), so it runs only with CHAINRULE_WHEEL_TEST=1 (`make wheel-check`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the Makefile's pin: the CPU wheel, not a multi-GB CUDA build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CHAINRULE_WHEEL_TEST") != "1", reason="set CHAINRULE_WHEEL_TEST=1 (make wheel-check)"
    ),
]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_wheel_installs_and_runs_in_an_empty_venv(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CHAINRULE_DEBUG")}
    env["OMP_NUM_THREADS"] = "1"
    dist = tmp_path / "dist"
    built = run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], ROOT, env)
    assert "is deprecated" not in built.stdout + built.stderr  # e.g. setuptools' license table
    (wheel,) = dist.glob("chainrule-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chainrule/data/files/digits.npz" in names and "chainrule/data/files/faithful.csv" in names

    venv.create(tmp_path / "venv", with_pip=True, system_site_packages=False)
    bin_dir = tmp_path / "venv" / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", TORCH], tmp_path, env)
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)

    outside = tmp_path / "elsewhere"  # no repository here or on the path
    outside.mkdir()
    chainrule = str(bin_dir / "chainrule")
    where = run([str(bin_dir / "python"), "-c", "import chainrule; print(chainrule.__file__)"], outside, env)
    assert str(tmp_path / "venv") in where.stdout and str(ROOT) not in where.stdout
    assert "exit codes:" in run([chainrule, "--help"], outside, env).stdout

    demo = run([chainrule, "demo", "--out", "demo", "--epochs", "3"], outside, env)
    assert json.loads(demo.stdout.splitlines()[-1])["test"]["n"] == 270
    assert (outside / "demo" / "samples.png").is_file()
    for noise in ("Tip:", "GPU available", "deprecated", "Warning", "Traceback"):
        assert noise not in demo.stdout + demo.stderr, noise

    moved = tmp_path / "moved-model"  # a model folder loads wherever it lies
    (outside / "demo" / "model").rename(moved)
    ev = run([chainrule, "eval", str(moved), "--data", "digits", "-n", "100"], outside, env)
    assert json.loads(ev.stdout)["n"] == 100
    run([chainrule, "sample", str(moved), "-n", "4", "--seed", "0", "--out", "s.png"], outside, env)
    assert (outside / "s.png").is_file()
