"""chainrule's FVSBN, NADE and MADE against plain reference implementations of the same models.

Each reference below is the obvious few-line PyTorch version (FVSBN: one masked linear layer;
NADE: the vectorised B x D x H cumulative-sum formulation; MADE: plain masked nn.Linear layers),
given the same weights and trained with the same loop (forward + backward + fused Adam step on
the same batch). Steps of chainrule and of the reference alternate in one process and the
medians are compared, so a busy moment on a shared machine slows both alike. Every row reports
chainrule / reference in images/s (> 1: chainrule is faster) for each model, batch (128, 256),
precision (fp32, bf16 autocast), thread count (1, 2) and mode (eager; compiled: the reference's
loss under torch.compile, chainrule as `train.compile` runs it). Sampling (16 images) is compared
with the obvious sampler (one conditioner pass per dimension; NADE's incremental update).

Run: `python -m benchmarks.autoregressive_speed` (about 15 minutes on an idle 2-core machine;
`--quick`: one small configuration, for tests). Writes benchmarks/results/autoregressive_speed.json.
`--passes N` times the grid N times in turn (a row's passes minutes apart; the geometric mean of
their ratios): on a shared 2-core machine a 2-thread row moves by up to 15 % between windows.
`--models fvsbn --merge` re-times some rows and keeps the rest of the file.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import machine_info, read_result, write_result
from benchmarks.speed_ratios import combine_passes, merged, ratios, summary, with_history
from chainrule.compiling import compiled_or_eager
from chainrule.models import FVSBN, MADE, NADE
from chainrule.training import make_adam
from chainrule.validation import check_discrete, values_checked_upstream

D = 784


# -- the reference implementations ------------------------------------------------------------
def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none").sum(1)


class RefFVSBN(nn.Module):
    """logits = b + (W * strictly-lower mask) x."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.register_buffer("mask", torch.ones(dim, dim).tril(-1))

    def logits(self, x):
        return F.linear(x, self.linear.weight * self.mask, self.linear.bias)

    def log_prob(self, x):
        return bernoulli_log_prob(self.logits(x), x)


class RefNADE(nn.Module):
    """The vectorised NADE: all B x D x H pre-activations from one cumulative sum."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(hidden, dim) * 0.05)
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(dim, hidden) * 0.05)
        self.b = nn.Parameter(torch.zeros(dim))

    def logits(self, x):
        xw = x[:, :, None] * self.W.t()[None]
        a = torch.cumsum(xw, 1) - xw + self.c
        return (torch.sigmoid(a) * self.V).sum(-1) + self.b

    def log_prob(self, x):
        return bernoulli_log_prob(self.logits(x), x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        x = torch.zeros(n, self.b.shape[0])
        a = self.c.expand(n, -1).clone()
        for d in range(x.shape[1]):
            p = torch.sigmoid(torch.sigmoid(a) @ self.V[d] + self.b[d])
            x[:, d] = torch.bernoulli(p)
            a += x[:, d : d + 1] * self.W[:, d]
        return x


class RefMADE(nn.Module):
    """One hidden ReLU layer of masked nn.Linear layers (natural order, given hidden degrees)."""

    def __init__(self, dim: int, hidden: int, hidden_degrees: torch.Tensor):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        deg = torch.arange(1, dim + 1)
        self.register_buffer("m1", (hidden_degrees[:, None] >= deg[None]).float())
        self.register_buffer("m2", (deg[:, None] > hidden_degrees[None]).float())

    def logits(self, x):
        h = F.relu(F.linear(x, self.fc1.weight * self.m1, self.fc1.bias))
        return F.linear(h, self.fc2.weight * self.m2, self.fc2.bias)

    def log_prob(self, x):
        return bernoulli_log_prob(self.logits(x), x)


@torch.no_grad()
def obvious_sample(ref: nn.Module, n: int) -> torch.Tensor:
    """One full conditioner pass per dimension (what FVSBN and MADE code usually does)."""
    x = torch.zeros(n, D)
    for d in range(D):
        x[:, d] = torch.bernoulli(torch.sigmoid(ref.logits(x)[:, d]))
    return x


MODELS = ["fvsbn", "nade-500", "made-8000"]
#: what names a row of the training table
QUICK_MODELS = ["fvsbn", "nade-500", "made-1000"]  # MADE-8000's reference sampler alone takes 10 s


def make_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(chainrule model, reference) with the same weights; `name` is fvsbn, nade-H or made-H."""
    torch.manual_seed(0)
    if name == "fvsbn":
        model, ref = FVSBN(D), RefFVSBN(D)
        with torch.no_grad():
            model.linear.weight.normal_(0, 0.05)
        ref.linear.load_state_dict(model.linear.state_dict())
    elif name.startswith("nade-"):
        hidden = int(name.split("-")[1])
        model, ref = NADE(D, hidden=hidden), RefNADE(D, hidden)
        ref.load_state_dict({k: v for k, v in model.state_dict().items() if k in "WcVb"})
    else:
        hidden = int(name.split("-")[1])
        model = MADE(D, hidden=[hidden])
        ref = RefMADE(D, hidden, model.hidden_degrees_0[0])
        ref.fc1.load_state_dict(model.layers[0].state_dict())
        ref.fc2.load_state_dict(model.out.state_dict())
    return model, ref


# -- timing -----------------------------------------------------------------------------------
def train_step(model: nn.Module, log_prob: Callable, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    opt = make_adam(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = -log_prob(x).float().mean()
        loss.backward()
        opt.step()

    return step


def interleaved_times(
    a: Callable, b: Callable, warmup: int, reps: int, budget_s: float, min_s: float = 0.0
) -> tuple[list[float], list[float]]:
    """Seconds of each call of `a` and of `b`, run alternately: at least `reps` each and `min_s`
    in all (fast steps get many repetitions), stopping past `budget_s` once 3 of each are in."""
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    start = time.perf_counter()
    i = 0
    while i < reps or (time.perf_counter() - start < min_s and i < 200):
        for fn, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        i += 1
        if i >= 3 and time.perf_counter() - start > budget_s:
            break
    return ta, tb


def interleaved(
    a: Callable, b: Callable, warmup: int, reps: int, budget_s: float, min_s: float = 0.0
) -> tuple[float, float]:
    """Median seconds of `a` and of `b` from `interleaved_times`."""
    ta, tb = interleaved_times(a, b, warmup, reps, budget_s, min_s)
    return statistics.median(ta), statistics.median(tb)


def chainrule_objective(model: nn.Module, compiled: bool) -> Callable:
    """What the trainer runs: the model's own kernels when it compiles itself, else the compiled
    objective (`train.compile`), else plain `training_log_prob`; on data whose values were checked
    once before training (`check_dataset_values`: here the benchmark's batch), so the steps run
    inside `values_checked_upstream` as the trainer's do."""
    if model.compiles_itself:
        model.set_compiled(compiled)
        objective = model.training_log_prob
    else:
        plain = model.training_log_prob
        objective = compiled_or_eager(plain, static=False) if compiled else plain

    def checked_once(x: torch.Tensor) -> torch.Tensor:
        with values_checked_upstream():
            return objective(x)

    return checked_once


def parallel_speedup(threads: int, reps: int = 100) -> float:
    """How much faster `threads` threads run a plain fp32 matmul (256 x 784 by 784 x 784) than one:
    the machine's state when a multi-thread row is timed (this 2-core VM moves between ~1.9 and
    ~1.5 for two threads, and the rows with it)."""
    a, b = torch.randn(256, D), torch.randn(D, D)
    seconds = {}
    for t in (1, threads):
        torch.set_num_threads(t)
        for _ in range(10):
            a @ b
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        seconds[t] = time.perf_counter() - start
    return seconds[1] / seconds[threads]


def time_row(name, batch, bf16, threads, compiled, reps, budget_s, pairs) -> dict:
    """One (model, batch, precision, threads, mode) row: chainrule's and the reference's training
    steps alternated; the steps' seconds are kept (`times`) for `combine_passes`."""
    speedup = parallel_speedup(threads) if threads > 1 else None
    torch.set_num_threads(threads)
    if compiled:  # a training run compiles for its one batch shape: so does each row, both sides
        torch._dynamo.reset()
    model, ref = pairs[name]
    x = torch.bernoulli(torch.full((batch, D), 0.3))
    check_discrete(x, model.num_values)  # what the trainer's check_dataset_values does once
    ours = train_step(model, chainrule_objective(model, compiled), x, bf16)
    theirs = train_step(ref, torch.compile(ref.log_prob) if compiled else ref.log_prob, x, bf16)
    # both sides under glibc's default allocator, as the reference runs in a user's own loop. fit
    # keeps freed memory (chainrule.allocator), which speeds chainrule's own steps too (FVSBN,
    # NADE-500, MADE-8000 at batch 128, fp32, one thread: 1.16-1.23x) but the reference's, with
    # more to allocate, more: FVSBN's ratio was 1.28-1.30 with both default, 1.17-1.20 with both
    # kept (2026-12-06, with a training run beside it)
    times_ours, times_ref = interleaved_times(
        ours, theirs, 1 if reps < 5 else 2, reps, budget_s, min_s=budget_s / 4
    )
    row = {
        "model": name,
        "batch": batch,
        "precision": "bf16-mixed" if bf16 else "fp32",
        "threads": threads,
        "mode": "compiled" if compiled else "eager",
    }
    if speedup is not None:
        row["parallel_speedup"] = round(speedup, 2)
    return {**row, **ratios(times_ours, times_ref, batch), "times": (times_ours, times_ref)}


def print_row(row: dict) -> None:
    low, high = row["ratio_95"]
    passes = "  passes " + " ".join(f"{r:.2f}" for r in row["pass_ratios"]) if "pass_ratios" in row else ""
    if "pass_parallel_speedups" in row:
        passes += "  (threads' speed-up " + " ".join(f"{r:.2f}" for r in row["pass_parallel_speedups"]) + ")"
    elif "parallel_speedup" in row:
        passes += f"  (threads' speed-up {row['parallel_speedup']:.2f})"
    print(
        f"{row['model']:9s} {row['batch']:5d} {row['precision']:>10s} {row['threads']:7d} {row['mode']:>8s}"
        f" {row['chainrule_images_per_s']:10.0f} {row['reference_images_per_s']:10.0f} {row['ratio']:7.2f}"
        f"  [{low:.2f}, {high:.2f}]{passes}",
        flush=True,
    )


def samplers(name: str, model: nn.Module, ref: nn.Module, n: int) -> tuple[Callable, Callable]:
    """chainrule's sampler and the reference's (NADE: incremental; others: one pass per dimension)."""
    if name.startswith("nade-"):
        return lambda: model.sample(n), lambda: ref.sample(n)
    return lambda: model.sample(n), lambda: obvious_sample(ref, n)


def sampling_rows(n: int, pairs, reps: int = 3) -> dict:
    torch.set_num_threads(1)
    out = {}
    for name, (model, ref) in pairs.items():
        t_ours, t_ref = interleaved(
            *samplers(name, model, ref, n), warmup=int(reps > 1), reps=reps, budget_s=20.0
        )
        out[name] = {"n": n, "chainrule_s": t_ours, "reference_s": t_ref, "ratio": t_ref / t_ours}
        print(
            f"sampling {name:9s} {n} images: chainrule {t_ours:.3f}s reference {t_ref:.3f}s"
            f" ratio {t_ref / t_ours:.1f}",
            flush=True,
        )
    return out


def main(
    quick: bool = False,
    models: list[str] | None = None,
    threads: list[int] | None = None,
    modes: list[str] | None = None,
    sampling: bool = True,
    passes: int = 1,
) -> dict:
    names = models or (QUICK_MODELS if quick else MODELS)
    pairs = {name: make_pair(name) for name in names}
    grid = list(
        itertools.product(
            names,
            [128] if quick else [128, 256],
            [False] if quick else [False, True],
            threads or ([1] if quick else [1, 2]),
            [m == "compiled" for m in modes or (["eager"] if quick else ["eager", "compiled"])],
        )
    )
    before = torch.get_num_threads()
    load_at_start = os.getloadavg()  # other work on the machine: these ratios are meant for an idle one
    # every (batch, precision) of each model is its own compiled graph: room for all of them
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    header = (
        f"{'model':9s} {'batch':>5s} {'precision':>10s} {'threads':>7s} {'mode':>8s}"
        f" {'chainrule':>10s} {'reference':>10s} {'ratio':>7s}  95 % interval  (images/s)"
    )
    print(header, flush=True)
    try:
        per_pass = []
        for p in range(passes):
            if passes > 1:
                print(f"pass {p + 1} of {passes}", flush=True)
            per_pass.append(
                [
                    time_row(*cfg, reps=3 if quick else 7, budget_s=2.0 if quick else 12.0, pairs=pairs)
                    for cfg in grid
                ]
            )
            for row in per_pass[-1]:
                print_row(row)
        rows = combine_passes(per_pass)
        if passes > 1:
            print(f"all {passes} passes: geometric mean of their ratios\n{header}", flush=True)
            for row in rows:
                print_row(row)
        samples = {} if not sampling else sampling_rows(2, pairs, 1) if quick else sampling_rows(16, pairs)
    finally:
        torch.set_num_threads(before)
    counts = summary(rows)
    print(counts)
    return {
        "machine": machine_info(),
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "passes": passes,
        "training": rows,
        "summary": counts,
        "sampling": samples,
        "dims": D,
        "notes": "ratio = chainrule images/s / reference images/s (sampling: reference s / chainrule s),"
        " medians of alternating repetitions in one process. References: FVSBN one masked linear,"
        " NADE the B x D x H cumulative-sum formulation, MADE-8000 masked nn.Linear layers; the"
        " same fused Adam step. compiled: the reference's loss under torch.compile, chainrule as"
        " the trainer's train.compile runs it (NADE: its own compiled kernels). chainrule's steps skip"
        " the per-batch value checks, as the trainer's do once it has checked the whole dataset."
        " ratio_95: bootstrap 95 % interval of the ratio over adjacent pairs of steps (noise alone)."
        " passes > 1: the grid timed that many times in turn; ratio the geometric mean of the passes'"
        " ratios (each in pass_ratios), ratio_95 from resampling each pass's pairs. parallel_speedup:"
        " how much faster the row's threads ran a plain fp32 matmul than one thread, just before the"
        " row (the machine's state; pass_parallel_speedups with passes).",
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 128, fp32, 1 thread, eager only")
    p.add_argument(
        "--models", nargs="*", help=f"default: {' '.join(MODELS)} (nade-H, made-H: H hidden units)"
    )
    p.add_argument("--threads", nargs="*", type=int, help="thread counts (default 1 2)")
    p.add_argument("--modes", nargs="*", choices=["eager", "compiled"], help="default: both")
    p.add_argument("--no-sampling", action="store_true", help="training rows only")
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="time the grid this many times in turn; a row gives the geometric mean of their ratios",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="replace only the rows this run timed in the results file, keeping the others",
    )
    p.add_argument("--no-write", action="store_true", help="print only, do not write the results file")
    args = p.parse_args()
    if args.passes < 1:
        p.error(f"--passes must be 1 or more, got {args.passes}")
    result = main(args.quick, args.models, args.threads, args.modes, not args.no_sampling, args.passes)
    if not args.no_write:
        previous = read_result("autoregressive_speed")
        result = with_history(merged(result, previous) if args.merge else result, previous)
        print("wrote", write_result("autoregressive_speed", result))
