"""Image models' training throughput before and after a change, measured in one run.

    python -m benchmarks.image_speed_before_after --before f6e6046
        # -> "before_after" in benchmarks/results/image_speed.json

"Before" is chainrule at git revision `--before` (checked out into a temporary worktree), "after"
the working tree. Each version runs in its own worker process (one chainrule per process), with
this file's harness and `benchmarks.image_speed`'s training step, so both are timed by the same
code: `--rounds` alternations of before, after, each measuring its own convolution and matmul
peaks and then the full training steps (forward, backward, fused Adam) of the image models at the
recipes' sizes, fp32 and bf16 autocast, best of 3 steps. A version's figure is its best round
(every round's images/s are kept in "rounds_seen"): this 2-core VM moves between a fast and a slow
state for minutes at a time, and the fraction of a peak measured in the same process is the
comparable number. A model whose code the change leaves alone is the control: its row shows how
far two runs of the same code differ (say so with `--note`, which the README prints).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("gated-pixelcnn", "row-lstm", "diagonal-bilstm")


def worker(models: list[str], batch: int) -> dict:
    """Peaks and training throughput of `models` with the chainrule this process imports."""
    import chainrule
    from benchmarks.common import matmul_peak_gflops
    from benchmarks.image_speed import (
        MODELS,
        conv_peak_gflops,
        flops_per_image,
        recipe_model,
        train_throughput,
    )

    torch.manual_seed(0)
    peaks = {
        "conv_fp32": conv_peak_gflops(torch.float32),
        "conv_bf16": conv_peak_gflops(torch.bfloat16),
        "matmul_fp32": matmul_peak_gflops(torch.float32),
        "matmul_bf16": matmul_peak_gflops(torch.bfloat16),
    }
    rows = {}
    for name, recipe, kind in MODELS:
        if name not in models:
            continue
        model, _ = recipe_model(recipe, kind)
        x = torch.bernoulli(
            torch.full((8, model.event_shape[0]), 0.3), generator=torch.Generator().manual_seed(1)
        )
        _, train_flops = flops_per_image(model, x)
        for dtype, bf16 in (("bf16", True), ("fp32", False)):
            ips = train_throughput(model.train(), batch, bf16)
            achieved = train_flops * ips / 1e9
            rows[f"{name} {dtype}"] = {
                "images_per_s": round(ips, 1),
                "fraction_of_conv_peak": round(achieved / peaks[f"conv_{dtype}"], 3),
                "fraction_of_matmul_peak": round(achieved / peaks[f"matmul_{dtype}"], 3),
            }
    return {
        "chainrule": chainrule.__file__,
        "peaks_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "rows": rows,
    }


def run_worker(src: Path, models: list[str], batch: int) -> dict:
    """`worker` in a fresh process whose chainrule is the one under `src` (a tree's src/)."""
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "benchmarks.image_speed_before_after", "--worker", "--models", *models]
    out = subprocess.run(cmd + ["--batch", str(batch)], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"worker failed ({src}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_rounds(rounds: list[dict]) -> dict:
    """Per row, the round with the highest fraction of the matmul peak (its peaks alongside)."""
    best = {}
    for r in rounds:
        for key, row in r["rows"].items():
            if key not in best or row["fraction_of_matmul_peak"] > best[key]["fraction_of_matmul_peak"]:
                best[key] = {**row, "peaks_gflops": r["peaks_gflops"]}
    return best


def compare(before: str, models: list[str], rounds: int, batch: int, note: str = "") -> dict:
    from benchmarks.common import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), before], cwd=ROOT, check=True)
        try:
            results = {"before": [], "after": []}
            for r in range(rounds):
                for version, src in (("before", tree / "src"), ("after", ROOT / "src")):
                    results[version].append(run_worker(src, models, batch))
                    print(f"round {r + 1} {version}:", json.dumps(results[version][-1]["rows"]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    b, a = best_rounds(results["before"]), best_rounds(results["after"])
    table = {
        key: {
            "before": b[key],
            "after": a[key],
            "speedup": round(a[key]["images_per_s"] / b[key]["images_per_s"], 3),
        }
        for key in a
    }
    return {
        "machine": machine_info(),
        "before": before,
        "after": f"working tree on {revision.stdout.strip()}",
        "batch": batch,
        "rounds": rounds,
        "note": "best round of each version (wall-clock best of 3 steps, torch's default threads);"
        " fractions against the peaks measured in that round's process",
        "reading": note,
        "rows": table,
        "rounds_seen": {
            version: [{key: row["images_per_s"] for key, row in r["rows"].items()} for r in runs]
            for version, runs in results.items()
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="HEAD", help="git revision of the 'before' code (default: HEAD)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--rounds", type=int, default=2, help="alternations of before and after")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--note", default="", help="what to read from the table (shown under it in the README)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.models, args.batch)))
        return
    from benchmarks.common import read_result, write_result

    result = read_result("image_speed") or {}
    result["before_after"] = compare(args.before, args.models, args.rounds, args.batch, args.note)
    for key, row in result["before_after"]["rows"].items():
        b, a = row["before"], row["after"]
        print(
            f"{key:22s} {b['images_per_s']:7.1f} -> {a['images_per_s']:7.1f} img/s (x{row['speedup']:.2f})"
            f"  matmul peak {b['fraction_of_matmul_peak']:.3f} -> {a['fraction_of_matmul_peak']:.3f}"
            f"  conv peak {b['fraction_of_conv_peak']:.3f} -> {a['fraction_of_conv_peak']:.3f}"
        )
    print("wrote", write_result("image_speed", result))


if __name__ == "__main__":
    main()
