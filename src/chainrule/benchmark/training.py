"""Training-step throughput: images/s, achieved FLOP/s as a fraction of a matmul peak measured in
the same run, peak memory, and the speed-ups of the blocked NADE kernel, bf16 and torch.compile."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chainrule.benchmark.common import best_time, matmul_peak_gflops, peak_memory
from chainrule.compiling import compiled_or_eager
from chainrule.models import FVSBN, MADE, NADE
from chainrule.training import make_adam

D = 784


def naive_nade_loss(model: NADE, x: torch.Tensor) -> torch.Tensor:
    """The common vectorised NADE (materialises B x D x H pre-activations), as a baseline."""
    xw = x[:, :, None] * model.W.t()[None]
    a = torch.cumsum(xw, 1) - xw + model.c
    logits = (torch.sigmoid(a) * model.V).sum(-1) + model.b
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()


def nll_loss(model, x: torch.Tensor) -> torch.Tensor:
    return -model.log_prob(x).float().mean()


def compiled_loss(model) -> Callable:
    """What `train.compile` does for models without their own kernels: compile the objective."""
    objective = compiled_or_eager(model.training_log_prob, static=False)  # as the trainer
    return lambda m, x: -objective(x).float().mean()


def nade_flops(batch: int, hidden: int) -> float:
    """Useful FLOPs of one O(n·d) training step: forward 4·D·H per example (pre-activation update,
    output dot product), backward twice that."""
    return 3 * 4 * D * hidden * batch


def masked_flops(model: torch.nn.Module, batch: int) -> float:
    """Useful FLOPs of one training step of a masked model (FVSBN, MADE): a multiply-add per free
    weight and example (`num_free_parameters`: the weights its masks do not zero, and the biases),
    forward x 3. Not the dense matmuls' count: about half of those multiply a masked zero, and
    the structured-mask kernels skip most of them (chainrule.mask_structure), so a dense count
    read as more than the peak (MADE-2000 fp32: 1.10 of it, 2026-12-07)."""
    return 3 * 2 * model.num_free_parameters() * batch


def time_train_step(
    model,
    batch: int,
    loss_fn: Callable = nll_loss,
    autocast: bool = False,
    min_seconds: float = 3.0,
    device: str = "cpu",
) -> tuple[float, float | None]:
    """(best seconds per optimizer step, peak MB) with the trainer's optimizer (fused Adam)."""
    model = model.to(device)
    opt = make_adam(model.parameters(), lr=1e-4)
    x = torch.bernoulli(torch.full((batch, D), 0.3, device=device))
    kind = torch.device(device).type

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model, x)
        loss.backward()
        opt.step()

    with peak_memory(device) as mem:
        secs = best_time(step, repeats=4, warmup=2, min_seconds=min_seconds, device=device)
    return secs, mem["peak_mb"]


@dataclass
class Case:
    name: str
    make: Callable[[], torch.nn.Module]
    flops: Callable[[torch.nn.Module, int], float]  # (model, batch) -> useful FLOPs of a step
    loss: Callable = nll_loss
    bf16: bool = False
    compiled: bool = False  # NADE's own compiled kernels
    torch_compile: bool = False  # torch.compile of the whole loss


def cases(full: bool, compile: bool) -> list[Case]:
    nade = lambda: NADE(D, hidden=500)  # noqa: E731
    made = lambda h: lambda: MADE(D, hidden=[h])  # noqa: E731
    nade_500 = lambda m, b: nade_flops(b, 500)  # noqa: E731
    out = [
        Case("fvsbn fp32", lambda: FVSBN(D), masked_flops),
        Case("nade-500 naive (B x D x H)", nade, nade_500, loss=naive_nade_loss),
        Case("nade-500 blocked eager", nade, nade_500),
        Case("made-2000 fp32 (largest recipe)", made(2000), masked_flops),
        Case("made-2000 bf16-mixed", made(2000), masked_flops, bf16=True),
    ]
    if full:
        out += [
            Case("made-8000 fp32", made(8000), masked_flops),
            Case("made-8000 bf16-mixed", made(8000), masked_flops, bf16=True),
        ]
    if compile:
        out += [
            Case("nade-500 blocked compiled", nade, nade_500, compiled=True),
            Case("fvsbn fp32 torch.compile", lambda: FVSBN(D), masked_flops, torch_compile=True),
            Case("made-2000 fp32 torch.compile", made(2000), masked_flops, torch_compile=True),
        ]
    return out


def run(full: bool = False, compile: bool = False, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    peak32 = matmul_peak_gflops(torch.float32, device=device)
    peak16 = matmul_peak_gflops(torch.bfloat16, device=device)
    print(f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s", flush=True)
    rows = []
    min_seconds = 3.0 if full else 1.5
    for batch in [128, 256] if full else [128]:
        for case in cases(full, compile):
            model = case.make()
            if case.compiled:
                model.set_compiled(True)
            loss = compiled_loss(model) if case.torch_compile else case.loss
            secs, mem = time_train_step(model, batch, loss, case.bf16, min_seconds, device)
            peak = peak16 if case.bf16 else peak32
            flops = case.flops(model, batch)
            row = {
                "model": case.name,
                "batch": batch,
                "seconds_per_step": secs,
                "images_per_s": batch / secs,
                "gflops": flops / secs / 1e9,
                "fraction_of_peak": flops / secs / 1e9 / peak,
                "peak_memory_mb": mem,
                "precision": "bf16-mixed" if case.bf16 else "fp32",
            }
            rows.append(row)
            print(
                f"{case.name:34s} batch {batch:4d}: {row['images_per_s']:7.0f} img/s,"
                f" {row['gflops']:6.1f} GFLOP/s = {row['fraction_of_peak']:.2f} of peak,"
                f" peak memory {mem if mem is None else round(mem)} MB",
                flush=True,
            )
    # the peak again after the cases, and the better of the two: on a shared machine one
    # measurement can fall in a busy moment and make every fraction look better than it is
    peak32 = max(peak32, matmul_peak_gflops(torch.float32, device=device))
    peak16 = max(peak16, matmul_peak_gflops(torch.bfloat16, device=device))
    for row in rows:
        row["fraction_of_peak"] = row["gflops"] / (peak16 if row["precision"] == "bf16-mixed" else peak32)
    print(f"matmul peak (best of before/after): fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    threads = thread_scaling(min_seconds, device) if device == "cpu" else {}
    return {
        "device": device,
        "matmul_peak_gflops": {"fp32": peak32, "bf16": peak16},
        "training": rows,
        "threads": threads,
        "speedups": {**speedups(rows), **threads.get("speedups", {})},
        "notes": "FLOPs per example per step: NADE 12*D*H (O(n d) algorithm); MADE and FVSBN 6 per free"
        " parameter (the weights their masks leave, and the biases: about half the dense matmuls)."
        " fraction_of_peak uses the fp32 peak, or the bf16 peak for bf16 rows."
        " Steps use the trainer's fused Adam; times are the best of repeats (shared machines).",
    }


def thread_scaling(min_seconds: float, device: str = "cpu") -> dict:
    """MADE-2000 fp32 steps (batch 128) with 1 thread and with one thread per core."""
    before = torch.get_num_threads()
    cores = os.cpu_count() or 1
    out: dict = {"images_per_s": {}}
    try:
        for n in sorted({1, cores}):
            torch.set_num_threads(n)
            torch.manual_seed(0)
            secs, _ = time_train_step(MADE(D, hidden=[2000]), 128, min_seconds=min_seconds, device=device)
            out["images_per_s"][n] = 128 / secs
            print(f"made-2000 fp32 batch 128 with {n} thread(s): {128 / secs:7.0f} img/s", flush=True)
    finally:
        torch.set_num_threads(before)
    if cores > 1:
        r = out["images_per_s"]
        out["speedups"] = {f"made-2000 {cores} threads / 1 thread (batch 128)": r[cores] / r[1]}
    return out


def speedups(rows: list[dict]) -> dict[str, float]:
    """Ratios of images/s between variants of the same model and batch."""
    rate = {(r["model"], r["batch"]): r["images_per_s"] for r in rows}
    pairs = {
        "nade blocked eager / naive": ("nade-500 blocked eager", "nade-500 naive (B x D x H)"),
        "nade compiled / eager": ("nade-500 blocked compiled", "nade-500 blocked eager"),
        "made-2000 bf16 / fp32": ("made-2000 bf16-mixed", "made-2000 fp32 (largest recipe)"),
        "made-8000 bf16 / fp32": ("made-8000 bf16-mixed", "made-8000 fp32"),
        "fvsbn torch.compile / eager": ("fvsbn fp32 torch.compile", "fvsbn fp32"),
        "made-2000 torch.compile / eager": (
            "made-2000 fp32 torch.compile",
            "made-2000 fp32 (largest recipe)",
        ),
    }
    out = {}
    for name, (a, b) in pairs.items():
        for batch in sorted({r["batch"] for r in rows}):
            if (a, batch) in rate and (b, batch) in rate:
                out[f"{name} (batch {batch})"] = rate[(a, batch)] / rate[(b, batch)]
    return {k: v for k, v in out.items() if math.isfinite(v)}
