"""Resident memory of a training run on a memory-mapped dataset larger than the budget: 2 million
28x28 images (1.57 GB of uint8 on disk, 6.3 GB as float32) trained for a few hundred steps in a
child process whose peak resident set (and its anonymous/file-backed split) is recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PATH = Path(tempfile.gettempdir()) / "chainrule-synth-2m"


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `cmd`; return its seconds, exit code and peak resident set (ru_maxrss from wait4), with
    the largest anonymous and file-backed resident sizes seen polling /proc every 0.1 s (MB)."""
    t = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        peak = {"RssAnon": 0, "RssFile": 0}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            for k, v in _status(proc.pid).items():
                if k in peak:
                    peak[k] = max(peak[k], v)
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "returncode": proc.returncode,
        "seconds": time.time() - t,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "peak_anon_mb": peak["RssAnon"] / 1024,
        "peak_file_backed_mb": peak["RssFile"] / 1024,
        "stdout_tail": stdout[-500:],
        "stderr_tail": stderr[-1500:] if proc.returncode else "",
    }


def run(
    path: str | os.PathLike = DEFAULT_PATH, n: int = 2_000_000, steps: int = 300, batch: int = 128
) -> dict:
    path = Path(path)
    import torch

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),  # the suite's --threads
    }
    cli = [sys.executable, "-m", "chainrule.cli"]
    result: dict = {"path": str(path), "images": n}
    if not (path / "meta.json").is_file():
        gen = run_child([*cli, "data", "synth", str(path), "--n", str(n)], env)
        if gen["returncode"]:
            raise RuntimeError(f"generating {path} failed: {gen['stderr_tail']}")
        result["generation"] = gen
        print(f"generated {path} in {gen['seconds']:.0f} s, peak RSS {gen['peak_rss_mb']:.0f} MB")
    result["dataset_bytes"] = sum(f.stat().st_size for f in path.glob("*.npy"))
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "r.yaml"
        recipe.write_text(
            "model: {name: made, hidden: [500]}\n"
            f"data: {{name: 'mmap:{path}'}}\n"
            f"train: {{batch_size: {batch}, max_epochs: 1, limit_train_batches: {steps}, progress: false}}\n"
        )
        train = run_child([*cli, "train", str(recipe), "--out", str(Path(tmp) / "run"), "--no-test"], env)
    if train["returncode"]:
        raise RuntimeError(f"training on {path} failed: {train['stderr_tail']}")
    result["training"] = {**train, "steps": steps, "batch": batch, "model": "made hidden [500]"}
    result["budget_mb"] = 2048
    result["under_budget"] = train["peak_rss_mb"] < 2048
    print(
        f"training {steps} steps on {result['dataset_bytes'] / 1e9:.2f} GB memory-mapped: peak RSS"
        f" {train['peak_rss_mb']:.0f} MB (anonymous {train['peak_anon_mb']:.0f} MB, file-backed"
        f" {train['peak_file_backed_mb']:.0f} MB), {train['seconds']:.0f} s",
        flush=True,
    )
    return result
