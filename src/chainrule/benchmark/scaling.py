"""Data-parallel scaling: the all-reduce measured with gloo on this machine, a 2-process DDP step
against a 1-process step, and an estimate for 1-64 GPUs (compute vs all-reduce volume per step)
for the largest recipe, from stated hardware figures (docs/distributed.md explains the model).

Per step, each of N GPUs computes its share of the batch, then DDP all-reduces the fp32
gradients (S bytes). A ring all-reduce sends and receives 2(N-1)/N * S bytes per GPU; across
nodes NCCL reduces inside each node over NVLink first, so only S/8 per GPU crosses InfiniBand.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from chainrule.models import MADE

D = 784
LARGEST_RECIPE = "recipes/made-mnist.yaml (MADE, one hidden layer of 2000 units; 3,138,784 parameters)"


def made_step_flops_per_example(hidden: int = 2000) -> float:
    """Forward 2 matmuls of D x H (2 FLOPs per multiply-add), backward twice the forward."""
    return 3 * 2 * (2 * D * hidden)


@dataclass
class GPUCluster:
    """Figures for H100 SXM nodes of 8 GPUs (NVLink 4 / NVSwitch inside, 8 x 400 Gb/s InfiniBand
    between nodes). Effective numbers for a 12.6 MB message, below the datasheet peaks."""

    gpus_per_node: int = 8
    achieved_tflops: float = 200.0  # bf16; the small GEMMs (M = per-GPU batch) reach ~20% of 989
    step_overhead_ms: float = 0.25  # kernel launches (~40 a step), fused Adam over 3.1M weights
    nvlink_busbw_gbs: float = 200.0  # NCCL all-reduce bus bandwidth inside a node at this size
    ib_busbw_gbs: float = 40.0  # per GPU across nodes (one 400 Gb/s NIC per GPU)
    latency_us: float = 15.0  # per all-reduce stage (NCCL tree/ring start-up)


def allreduce_ms(nbytes: float, gpus: int, hw: GPUCluster | None = None) -> float:
    """Hierarchical ring all-reduce: NVLink inside a node, S/8 per GPU across nodes."""
    hw = hw or GPUCluster()
    if gpus == 1:
        return 0.0
    local = min(gpus, hw.gpus_per_node)
    nodes = math.ceil(gpus / hw.gpus_per_node)
    t = 2 * (local - 1) / local * nbytes / (hw.nvlink_busbw_gbs * 1e9)
    if nodes > 1:
        t += 2 * (nodes - 1) / nodes * (nbytes / local) / (hw.ib_busbw_gbs * 1e9)
    stages = math.ceil(math.log2(gpus))
    return 1e3 * t + stages * hw.latency_us / 1e3


def estimate(
    params: int = 3_138_784,
    flops_per_example: float | None = None,
    per_gpu_batch: int = 128,
    global_batch: int | None = None,
    gpus: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
    hw: GPUCluster | None = None,
) -> list[dict]:
    """Rows per GPU count: compute and all-reduce time per step, all-reduce volume per GPU,
    images/s and efficiency against perfect linear scaling. Weak scaling (fixed per-GPU batch)
    unless `global_batch` is given (strong scaling: the batch is split over the GPUs)."""
    hw = hw or GPUCluster()
    flops_per_example = flops_per_example or made_step_flops_per_example()
    grad_bytes = 4 * params  # DDP all-reduces fp32 gradients, also under bf16 autocast
    rows = []
    base = None
    for n in gpus:
        b = per_gpu_batch if global_batch is None else max(global_batch // n, 1)
        compute = 1e3 * b * flops_per_example / (hw.achieved_tflops * 1e12) + hw.step_overhead_ms
        comm = allreduce_ms(grad_bytes, n, hw)
        step = compute + comm  # no overlap: one 25 MB DDP bucket holds all 12.6 MB of gradients
        rate = n * b / step * 1e3
        base = base or rate / n
        rows.append(
            {
                "gpus": n,
                "per_gpu_batch": b,
                "global_batch": n * b,
                "compute_ms": round(compute, 4),
                "allreduce_mb_sent_per_gpu": round(2 * (n - 1) / n * grad_bytes / 2**20, 2),
                "allreduce_ms": round(comm, 4),
                "step_ms": round(step, 4),
                "images_per_s": round(rate),
                "efficiency": round(rate / (n * base), 3),
            }
        )
    return rows


class NLL(torch.nn.Module):
    """forward = mean negative log-likelihood, so DDP sees the whole loss in its forward."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.model.log_prob(x).mean()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, numel: int, batch: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    buf = torch.ones(numel)
    best = math.inf
    for _ in range(8):
        dist.barrier()
        t = time.perf_counter()
        dist.all_reduce(buf)
        best = min(best, time.perf_counter() - t)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(NLL(MADE(D, hidden=[2000])))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.bernoulli(torch.full((batch // world, D), 0.3))
    step_best = math.inf
    for i in range(6):
        dist.barrier()
        t = time.perf_counter()
        opt.zero_grad()
        model(x).backward()
        opt.step()
        if i:
            step_best = min(step_best, time.perf_counter() - t)
    if rank == 0:
        with open(out, "w") as f:
            f.write(f"{best} {step_best}")
    dist.destroy_process_group()


def measure_cpu(world: int = 2, params: int = 3_138_784, batch: int = 128) -> dict:
    """gloo on this machine: one all-reduce of the largest recipe's gradients, and one DDP step of
    MADE-2000 at global batch `batch` with `world` processes of one thread each."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r")
        mp.spawn(_worker, args=(world, _free_port(), params, batch, out), nprocs=world, join=True)
        allreduce_s, step_s = (float(v) for v in Path(out).read_text().split())
    return {
        "processes": world,
        "allreduce_bytes": 4 * params,
        "allreduce_ms": 1e3 * allreduce_s,
        "allreduce_gb_per_s_bus": 2 * (world - 1) / world * 4 * params / allreduce_s / 1e9,
        "ddp_step_ms": 1e3 * step_s,
        "ddp_images_per_s": batch / step_s,
    }


def run(measure: bool = True) -> dict:
    hw = GPUCluster()
    result = {
        "largest_recipe": LARGEST_RECIPE,
        "gpu_assumptions": asdict(hw),
        "weak_scaling_per_gpu_batch_128": estimate(hw=hw),
        "weak_scaling_per_gpu_batch_2048": estimate(per_gpu_batch=2048, hw=hw),
        "strong_scaling_global_batch_4096": estimate(global_batch=4096, hw=hw),
    }
    if measure:
        result["cpu_gloo"] = measure_cpu()
        c = result["cpu_gloo"]
        print(
            f"gloo, 2 processes: all-reduce of {c['allreduce_bytes'] / 2**20:.1f} MB in"
            f" {c['allreduce_ms']:.1f} ms ({c['allreduce_gb_per_s_bus']:.2f} GB/s bus);"
            f" DDP step {c['ddp_step_ms']:.0f} ms = {c['ddp_images_per_s']:.0f} img/s",
            flush=True,
        )
    for r in result["weak_scaling_per_gpu_batch_128"]:
        print(
            f"{r['gpus']:3d} GPUs (batch {r['per_gpu_batch']} each): compute {r['compute_ms']:.3f} ms,"
            f" all-reduce {r['allreduce_ms']:.3f} ms, {r['images_per_s']:,} img/s, efficiency"
            f" {r['efficiency']:.2f}",
            flush=True,
        )
    return result


def markdown(rows: list[dict]) -> str:
    """The rows of `estimate` as a Markdown table (docs/distributed.md holds these)."""
    lines = [
        "| GPUs | batch per GPU | global batch | compute ms | all-reduce MiB sent per GPU | all-reduce ms"
        " | step ms | images/s | efficiency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gpus']} | {r['per_gpu_batch']:,} | {r['global_batch']:,} | {r['compute_ms']:.3f} |"
            f" {r['allreduce_mb_sent_per_gpu']:.1f} | {r['allreduce_ms']:.3f} | {r['step_ms']:.3f} |"
            f" {r['images_per_s']:,} | {r['efficiency']:.2f} |"
        )
    return "\n".join(lines)
