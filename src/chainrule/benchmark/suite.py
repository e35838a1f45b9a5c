"""`chainrule bench`: run the benchmark parts, write one JSON file each plus a summary of ratios.

Default settings finish in a few minutes on 2 CPU cores; `--full` adds larger batches and models,
`--compile` adds torch.compile'd training steps, `--only mmap` measures training on a 2-million-
image memory-mapped dataset (written to the temp folder once, 1.6 GB).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from chainrule.benchmark.common import machine_info, write_result
from chainrule.errors import ChainruleError

PARTS = ("training", "sampling", "allreduce", "scaling", "mmap")
DEFAULT_PARTS = ("training", "sampling", "allreduce", "scaling")


def run_suite(
    out: str | os.PathLike = "benchmarks/results",
    *,
    full: bool = False,
    compile: bool = False,
    only: list[str] | None = None,
    device: str | None = None,
    threads: int | None = 1,
) -> dict:
    """Run the chosen parts (default: all but mmap) and return the summary that is also written.
    `threads` (default 1, None = torch's default of one per core) sets torch's intra-op threads:
    on machines shared with other jobs more threads than idle cores make every figure noise."""
    parts = list(only) if only else list(DEFAULT_PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ChainruleError(f"unknown benchmark part(s) {unknown}; parts: {', '.join(PARTS)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if threads is not None:
        if threads < 1:
            raise ChainruleError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    out = Path(out)
    start = time.time()
    settings = {"full": full, "compile": compile, "parts": parts, "device": device}
    summary: dict = {"settings": {**settings, "threads": torch.get_num_threads()}}
    ratios: dict[str, float] = {}
    files: list[str] = []

    def timed(name: str, fn):
        t = time.time()
        print(f"== {name}", flush=True)
        result = fn()
        result["seconds"] = time.time() - t
        files.append(str(write_result(f"bench_{name}", result, out)))
        return result

    if "training" in parts:
        from chainrule.benchmark import training

        r = timed("training", lambda: training.run(full, compile, device))
        ratios.update({f"speed-up {k}": v for k, v in r["speedups"].items()})
        for row in r["training"]:
            ratios[f"fraction of matmul peak: {row['model']} (batch {row['batch']})"] = row[
                "fraction_of_peak"
            ]
        summary["peak_memory_mb"] = {
            f"{r_['model']} (batch {r_['batch']})": r_["peak_memory_mb"] for r_ in r["training"]
        }
    if "sampling" in parts:
        from chainrule.benchmark import sampling

        r = timed("sampling", lambda: sampling.run(full))
        ratios.update(
            {f"sampling speed-up fast/generic: {k}": v["speedup"] for k, v in r["sampling"].items()}
        )
        summary["samplers_identical"] = all(v["identical"] for v in r["sampling"].values())
    if "allreduce" in parts or "scaling" in parts:
        from chainrule.benchmark import scaling

        r = timed("scaling", lambda: scaling.run(measure="allreduce" in parts))
        for row in r["weak_scaling_per_gpu_batch_128"]:
            ratios[f"estimated efficiency, {row['gpus']} GPUs (per-GPU batch 128)"] = row["efficiency"]
        if "cpu_gloo" in r:
            summary["cpu_gloo"] = r["cpu_gloo"]
    if "mmap" in parts:
        from chainrule.benchmark import mmap_memory

        r = timed("mmap_memory", mmap_memory.run)
        summary["mmap_peak_rss_mb"] = r["training"]["peak_rss_mb"]
        ratios["mmap run peak RSS / dataset size"] = r["training"]["peak_rss_mb"] * 2**20 / r["dataset_bytes"]
    summary["ratios"] = ratios
    summary["seconds"] = time.time() - start
    summary["files"] = files
    path = write_result("bench_summary", summary, out)
    return {
        "summary": str(path),
        "seconds": round(summary["seconds"], 1),
        "machine": machine_info(),
        "ratios": ratios,
    }
