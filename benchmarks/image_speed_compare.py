"""Before/after training throughput of the image models on one thread, measured in one process.

    OMP_NUM_THREADS=1 python -m benchmarks.image_speed_compare   # adds "before_after_1_thread"
                                                                  # to benchmarks/results/image_speed.json

"Before" is main's Row LSTM layer (ef95f13: one autograd step per row, `lstm_cell` with three
sigmoids), kept here verbatim; "after" is the current code (`lstm_scan`). The two run interleaved,
fp32 and bf16 autocast, best of `--rounds`, so both see the same load on a shared machine. Times
are the thread's CPU time (`time.thread_time`), not wall time: other processes on the machine
then slow a measurement only through shared caches, not by taking the core away; the peaks
(benchmarks.image_speed's peak kernels) are timed the same way, so
the fractions of peak compare like with like. Gated PixelCNN and the Diagonal BiLSTM are
unchanged by this work; they are timed as they are, for the table.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks.common import RESULTS, machine_info, read_result
from benchmarks.image_speed import MODELS, flops_per_image, measure_peaks, recipe_model, training_step
from chainrule.models.row_lstm import RowLSTMLayer
from chainrule.persistence import atomic_write_json


def main_lstm_cell(gates: torch.Tensor, c: torch.Tensor, dim: int = 1):
    """main's lstm_cell (three sigmoids)."""
    if gates.dtype in (torch.float16, torch.bfloat16):
        gates = gates.float()
    o, f, i, g = gates.chunk(4, dim)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def main_row_forward(self: RowLSTMLayer, x: torch.Tensor) -> torch.Tensor:
    """main's RowLSTMLayer.forward: one autograd step per row."""
    b, ch, height, width = x.shape
    rows = self.input_to_state(x).permute(2, 0, 3, 1).contiguous().unbind(0)
    h = c = torch.zeros(b, width, ch, device=x.device, dtype=x.dtype)
    states = []
    for pre in rows:
        padded = F.pad(h, (0, 0, 1, 1))
        above = torch.cat([padded[..., :-2, :], h, padded[..., 2:, :]], -1) @ self.state_to_state.t()
        h, c = main_lstm_cell(pre + above, c, dim=-1)
        states.append(h)
    return x + self.out(torch.stack(states).permute(1, 3, 0, 2))


VERSIONS = {"before": {RowLSTMLayer: main_row_forward}, "after": {RowLSTMLayer: RowLSTMLayer.forward}}


def cpu_best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return best


def peaks(repeats: int = 5) -> dict[str, float]:
    """benchmarks.image_speed's peaks and peak kernels (GFLOP/s, "conv_bf16", ...), thread CPU time."""
    return measure_peaks(seconds_of=lambda kind, fn: cpu_best(fn, repeats))


def step_seconds(model, batch: int, bf16: bool) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of one training step (forward, backward, Adam)."""
    step = training_step(model, batch, bf16)
    step()
    t, w = time.thread_time(), time.perf_counter()
    step()
    return time.thread_time() - t, time.perf_counter() - w


def run(rounds: int, batch: int) -> dict:
    torch.set_num_threads(1)
    start = peaks()
    rows = []
    for name, recipe, kind in MODELS:
        if name == "pixelcnn":
            continue
        model, _ = recipe_model(recipe, kind)
        flop_x = torch.bernoulli(torch.full((8, model.event_shape[0]), 0.3))
        train_flops = flops_per_image(model, flop_x)[1]
        model.train()
        versions = VERSIONS if isinstance(model.layers[0], RowLSTMLayer) else {"current": {}}
        best: dict = {}
        for _ in range(rounds):
            for precision in ("bf16", "fp32"):
                for version, patches in versions.items():
                    saved = {cls: cls.forward for cls in patches}
                    for cls, fn in patches.items():
                        cls.forward = fn
                    cpu, wall = step_seconds(model, batch, precision == "bf16")
                    for cls, fn in saved.items():
                        cls.forward = fn
                    key = (version, precision)
                    old = best.get(key, (float("inf"), float("inf")))
                    best[key] = (min(old[0], cpu), min(old[1], wall))
        for (version, precision), (cpu, wall) in best.items():
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "precision": precision,
                    "train_gflop_per_image": train_flops / 1e9,
                    "images_per_cpu_s": round(batch / cpu, 1),
                    "images_per_wall_s": round(batch / wall, 1),
                    "achieved_gflops": round(train_flops * batch / cpu / 1e9, 1),
                }
            )
            print(rows[-1], flush=True)
    end = peaks()
    top = {k: max(start[k], end[k]) for k in start}
    for row in rows:
        p = row["precision"]
        row["fraction_of_conv_peak"] = round(row["achieved_gflops"] / top[f"conv_{p}"], 3)
        row["fraction_of_matmul_peak"] = round(row["achieved_gflops"] / top[f"matmul_{p}"], 3)
    return {
        "machine": machine_info(),
        "threads": 1,
        "batch": batch,
        "rounds": rounds,
        "timing": "thread CPU time",
        "peaks_gflops": {k: round(v, 1) for k, v in top.items()},
        "peaks_gflops_start_end": {
            "start": {k: round(v, 1) for k, v in start.items()},
            "end": {k: round(v, 1) for k, v in end.items()},
        },
        "rows": rows,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    result = run(args.rounds, args.batch)
    data = read_result("image_speed") or {}
    data["before_after_1_thread"] = result
    path = RESULTS / "image_speed.json"
    atomic_write_json(path, data)  # keeps the file's own machine record: this adds one section
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
