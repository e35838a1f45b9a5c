"""Helpers shared by benchmarks (they live in `chainrule.benchmark.common`, which `chainrule bench`
uses too); `write_result(name, payload)` writes benchmarks/results/NAME.json, `read_result(name)`
reads it back (a run that keeps parts of the file it replaces)."""

from __future__ import annotations

import json
from pathlib import Path

from chainrule.benchmark import common
from chainrule.benchmark.common import best_time, machine_info, matmul_peak_gflops, peak_memory

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, payload: dict) -> Path:
    return common.write_result(name, payload, RESULTS)


def read_result(name: str, folder: Path = RESULTS) -> dict | None:
    """FOLDER/NAME.json (benchmarks/results by default) as written last, or None when there is none yet."""
    path = Path(folder) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = [
    "RESULTS",
    "best_time",
    "machine_info",
    "matmul_peak_gflops",
    "peak_memory",
    "read_result",
    "write_result",
]
