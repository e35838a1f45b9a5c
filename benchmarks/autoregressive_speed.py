"""Training throughput, achieved FLOP/s and fast-vs-generic sampling for FVSBN, NADE and MADE.

Run: `.venv/bin/python -m benchmarks.autoregressive_speed` (about 5 minutes on 2 cores); the
shorter suite behind `chainrule bench` reuses its pieces (chainrule.benchmark).
Writes benchmarks/results/autoregressive_speed.json. Every speed is also given as a ratio to a
matmul peak measured in the same run, because the shared machines vary from day to day.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import matmul_peak_gflops, write_result
from chainrule.benchmark.sampling import compare as sampling
from chainrule.benchmark.training import made_flops, nade_flops, naive_nade_loss, time_train_step
from chainrule.models import FVSBN, MADE, NADE

D = 784


def train_step_time(model, batch: int, loss_fn=None, autocast: bool = False) -> float:
    """Best seconds per optimizer step (the trainer's fused Adam)."""
    if loss_fn is None:
        return time_train_step(model, batch, autocast=autocast)[0]
    return time_train_step(model, batch, loss_fn, autocast)[0]


def main(quick: bool = False) -> dict:
    torch.manual_seed(0)
    peak32 = matmul_peak_gflops(torch.float32)
    peak16 = matmul_peak_gflops(torch.bfloat16)
    out: dict = {
        "matmul_peak_gflops": {"fp32": peak32, "bf16": peak16},
        "training": [],
        "sampling": {},
    }
    print(f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s", flush=True)

    def record(name, batch, secs, flops, peak, **extra):
        row = {
            "model": name,
            "batch": batch,
            "images_per_s": batch / secs,
            "gflops": flops / secs / 1e9,
            "fraction_of_peak": flops / secs / 1e9 / peak,
            **extra,
        }
        out["training"].append(row)
        print(
            f"{name:34s} batch {batch:4d}: {row['images_per_s']:7.0f} img/s,"
            f" {row['gflops']:6.1f} GFLOP/s = {row['fraction_of_peak']:.2f} of peak",
            flush=True,
        )

    batches = [128] if quick else [128, 256]
    nade = NADE(D, hidden=500)
    for batch in batches:
        record(
            "nade-500 naive (B x D x H)",
            batch,
            train_step_time(nade, batch, naive_nade_loss),
            nade_flops(batch, 500),
            peak32,
        )
        nade.set_compiled(False)
        record(
            "nade-500 blocked eager",
            batch,
            train_step_time(nade, batch),
            nade_flops(batch, 500),
            peak32,
        )
        nade.set_compiled(True)
        record(
            "nade-500 blocked compiled",
            batch,
            train_step_time(nade, batch),
            nade_flops(batch, 500),
            peak32,
        )
    nade.set_compiled(False)
    made = MADE(D, hidden=[8000])
    for batch in batches:
        record("made-8000 fp32", batch, train_step_time(made, batch), made_flops(batch, 8000), peak32)
        record(
            "made-8000 bf16-mixed",
            batch,
            train_step_time(made, batch, autocast=True),
            made_flops(batch, 8000),
            peak16,
            precision="bf16-mixed",
        )
    n = 16
    for name, model in [("fvsbn", FVSBN(D)), ("nade-500", nade), ("made-8000", made)]:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.05)
        s = sampling(model, n)
        out["sampling"][name] = s
        print(
            f"sampling {name:10s}: fast {s['fast_s']:.3f}s generic {s['generic_s']:.2f}s"
            f" speed-up {s['speedup']:.0f}x identical={s['identical']}",
            flush=True,
        )
    out["notes"] = (
        "FLOP counts: NADE 12*D*H per example per step (O(n d) algorithm); MADE 12*D*H "
        "(dense masked matmuls). Ratios use the fp32 peak, or the bf16 peak for bf16 rows."
    )
    out["dims"] = D
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="batch 128 only")
    args = p.parse_args()
    result = main(args.quick)
    print("wrote", write_result("autoregressive_speed", result))
