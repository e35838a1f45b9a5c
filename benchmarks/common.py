"""Helpers shared by benchmarks (they live in `chainrule.benchmark.common`, which `chainrule bench`
uses too); `write_result(name, payload)` writes benchmarks/results/NAME.json."""

from __future__ import annotations

from pathlib import Path

from chainrule.benchmark import common
from chainrule.benchmark.common import best_time, machine_info, matmul_peak_gflops, peak_memory

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, payload: dict) -> Path:
    return common.write_result(name, payload, RESULTS)


__all__ = ["RESULTS", "best_time", "machine_info", "matmul_peak_gflops", "peak_memory", "write_result"]
