"""Image models' training throughput before and after a change, measured in one run.

    python -m benchmarks.image_speed_before_after --before f6e6046 [--side-by-side]
        # -> "before_after" in benchmarks/results/image_speed.json (the comparison it replaces
        #    moves to "earlier_before_afters", newest first)

"Before" is chainrule at git revision `--before` (checked out into a temporary worktree), "after"
the working tree. Each version runs in its own worker process (one chainrule per process), with
this file's harness and `benchmarks.image_speed`'s training step, so both are timed by the same
code: `--rounds` alternations of before, after, each measuring its own convolution and matmul
peaks and then the full training steps (forward, backward, fused Adam) of the image models at the
recipes' sizes, fp32 and bf16 autocast, best of 3 steps. A version's figure is its best round
(every round's images/s are kept in "rounds_seen"): this 2-core VM moves between a fast and a slow
state for minutes at a time, and the fraction of a peak measured in the same process is the
comparable number. A model whose code the change leaves alone is the control: its row shows how
far two runs of the same code differ (say so with `--note`, which the README prints). On this VM
that is up to 1.19x between runs minutes apart, more than most changes; `--side-by-side` runs the
two versions at the same time, one thread each pinned to its own core, so each round pairs them in
the same machine state, and the speed-up is the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("gated-pixelcnn", "row-lstm", "diagonal-bilstm")
DEFAULT_ROUNDS = 2
DEFAULT_MODES = ("eager",)
KEPT = 3  # earlier comparisons kept in the results file (and shown in the README)


def worker(
    models: list[str], batch: int, cpu: int | None = None, modes: tuple[str, ...] = ("eager",)
) -> dict:
    """Peaks and training throughput of `models` with the chainrule this process imports (on one
    thread pinned to core `cpu` when given), in each of `modes` (eager; compiled as
    `train.compile: true` trains: rows keyed "... compiled")."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
        torch.set_num_threads(1)
    import chainrule
    from benchmarks.image_speed import MODELS, measure_peaks, model_flops, recipe_model, throughput_row

    torch.manual_seed(0)
    peaks = measure_peaks()
    rows = {}
    for name, recipe, kind in MODELS:
        if name in models:
            model, _ = recipe_model(recipe, kind)
            _, train_flops = model_flops(model)
            for dtype, bf16 in (("bf16", True), ("fp32", False)):
                for mode in modes:
                    compiled = mode == "compiled"
                    key = f"{name} {dtype}" + (" compiled" if compiled else "")
                    rows[key] = throughput_row(model, train_flops, batch, bf16, peaks, compiled=compiled)
    return {
        "chainrule": chainrule.__file__,
        "peaks_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "rows": rows,
    }


def start_worker(
    src: Path, models: list[str], batch: int, cpu: int | None = None, modes: tuple[str, ...] = ("eager",)
) -> subprocess.Popen:
    """`worker` in a fresh process whose chainrule is the one under `src` (a tree's src/)."""
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "benchmarks.image_speed_before_after", "--worker", "--models", *models]
    cmd += ["--batch", str(batch), "--modes", *modes] + ([] if cpu is None else ["--cpu", str(cpu)])
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_worker(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"worker failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_round(
    sources: dict[str, Path], models: list[str], batch: int, side_by_side: bool, modes: tuple[str, ...]
) -> dict:
    """One round: the versions one after the other (torch's default threads), or side by side,
    each on one thread pinned to its own core, so both see the machine in the same state."""
    if not side_by_side:
        return {v: finish_worker(start_worker(src, models, batch, modes=modes)) for v, src in sources.items()}
    running = {
        v: start_worker(src, models, batch, cpu=k, modes=modes) for k, (v, src) in enumerate(sources.items())
    }
    return {v: finish_worker(p) for v, p in running.items()}


def best_rounds(rounds: list[dict]) -> dict:
    """Per row, the round with the highest fraction of the matmul peak (its peaks alongside)."""
    best = {}
    for r in rounds:
        for key, row in r["rows"].items():
            if key not in best or row["fraction_of_matmul_peak"] > best[key]["fraction_of_matmul_peak"]:
                best[key] = {**row, "peaks_gflops": r["peaks_gflops"]}
    return best


def compare(
    before: str,
    models: list[str],
    rounds: int,
    batch: int,
    note: str = "",
    side_by_side: bool = False,
    modes: tuple[str, ...] = ("eager",),
) -> dict:
    from benchmarks.common import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), before], cwd=ROOT, check=True)
        try:
            results = {"before": [], "after": []}
            for r in range(rounds):
                sources = {"before": tree / "src", "after": ROOT / "src"}
                if r % 2:  # alternate which goes first (or which core each gets)
                    sources = dict(reversed(sources.items()))
                for version, out in run_round(sources, models, batch, side_by_side, modes).items():
                    results[version].append(out)
                    print(f"round {r + 1} {version}:", json.dumps(out["rows"]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    b, a = best_rounds(results["before"]), best_rounds(results["after"])
    table = {}
    for key in a:
        paired = [
            round(x["rows"][key]["images_per_s"] / y["rows"][key]["images_per_s"], 3)
            for x, y in zip(results["after"], results["before"], strict=True)
        ]
        best = round(a[key]["images_per_s"] / b[key]["images_per_s"], 3)
        table[key] = {
            "before": b[key],
            "after": a[key],
            "speedup": statistics.median(paired) if side_by_side else best,
            "round_speedups": paired,
        }
    how = (
        "side by side, each version on one thread pinned to its own core; speedup the median of the"
        " rounds' after/before ratios"
        if side_by_side
        else "one version after the other, torch's default threads; speedup best round against best round"
    )
    return {
        "machine": machine_info(),
        "before": before,
        "after": f"working tree on {revision.stdout.strip()}",
        "batch": batch,
        "rounds": rounds,
        "side_by_side": side_by_side,
        "modes": list(modes),
        "note": f"{how} (wall-clock best of 3 steps); before/after columns: each version's best round,"
        " fractions against the peaks measured in that round's process",
        "reading": note,
        "rows": table,
        "rounds_seen": {
            version: [{key: row["images_per_s"] for key, row in r["rows"].items()} for r in runs]
            for version, runs in results.items()
        },
    }


def command(result: dict) -> str:
    """The command line that made `result` (a "before_after" section), with the options it was
    given where they differ from the defaults."""
    models = sorted({key.split()[0] for key in result["rows"]})
    cmd = f"python -m benchmarks.image_speed_before_after --before {result['before']}"
    if models != sorted(DEFAULT_MODELS):
        cmd += " --models " + " ".join(models)
    if tuple(result.get("modes", DEFAULT_MODES)) != DEFAULT_MODES:
        cmd += " --modes " + " ".join(result["modes"])
    if result.get("rounds", DEFAULT_ROUNDS) != DEFAULT_ROUNDS:
        cmd += f" --rounds {result['rounds']}"
    return cmd + (" --side-by-side" if result.get("side_by_side") else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="HEAD", help="git revision of the 'before' code (default: HEAD)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="alternations of before and after")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--note", default="", help="what to read from the table (shown under it in the README)")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="run both versions at once, one thread each on its own core (needs 2 cores): paired rounds",
    )
    p.add_argument(
        "--modes",
        nargs="+",
        choices=["eager", "compiled"],
        default=list(DEFAULT_MODES),
        help="training modes to time (compiled: as train.compile: true trains; default: eager)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.models, args.batch, args.cpu, tuple(args.modes))))
        return
    from benchmarks.common import read_result, write_result

    result = read_result("image_speed") or {}
    if "before_after" in result:  # the comparisons of earlier changes stay, newest first
        result["earlier_before_afters"] = [result["before_after"], *result.get("earlier_before_afters", [])][
            :KEPT
        ]
    result["before_after"] = compare(
        args.before, args.models, args.rounds, args.batch, args.note, args.side_by_side, tuple(args.modes)
    )
    for key, row in result["before_after"]["rows"].items():
        b, a = row["before"], row["after"]
        print(
            f"{key:31s} {b['images_per_s']:7.1f} -> {a['images_per_s']:7.1f} img/s (x{row['speedup']:.2f})"
            f"  matmul peak {b['fraction_of_matmul_peak']:.3f} -> {a['fraction_of_matmul_peak']:.3f}"
            f"  conv peak {b['fraction_of_conv_peak']:.3f} -> {a['fraction_of_conv_peak']:.3f}"
        )
    print("wrote", write_result("image_speed", result))


if __name__ == "__main__":
    main()
