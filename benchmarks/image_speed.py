"""Image models' speed: cached vs generic sampling of 28x28 images, training throughput and
achieved FLOP/s as a fraction of convolution and matmul peaks measured in the same run.

    python -m benchmarks.image_speed            # -> benchmarks/results/image_speed.json
    python -m benchmarks.image_speed --quick    # tiny models on 12x12: a smoke test, prints only

Models are the zoo recipes' architectures (randomly initialised: speed does not depend on the
weights): Gated PixelCNN and PixelCNN from their recipes, and both PixelRNN layer types (Row LSTM,
Diagonal BiLSTM) at the sizes of recipes/pixelrnn-mnist.yaml, which trains one of them. The conv
peak is the best 3x3 convolution (batch 64, 128 -> 128 channels on 28x28) in either memory layout,
(N, C, H, W) or channels-last; the matmul peak the best of a 2048^3 torch.mm (MKL) and an
8192 x 1024 x 1024 product run by oneDNN (a 1x1 convolution of a channels-last map), each in the
row's precision. Until 2026-12-07 only the (N, C, H, W) convolution and the MKL matmul were timed,
which understated the conv peak by 3-10 % (median 5-6 %) and the matmul peak by 12-30 % in fp32 and
4-13 % in bf16 on this machine (three full runs, `PEAK_KERNELS`): every fraction read that much too
high. All four kernels are timed *beside each row*: rounds of each peak kernel and one training
step, best of each. This 2-core VM moves between a fast and a slow state for minutes at a time,
and a peak measured once at the start (still written as `peaks_gflops`, and each row's
`fraction_of_run_conv_peak`) misstated every fraction whenever it caught the other state
(2026-12-07: an fp32 matmul peak of 120 against 169-178 GFLOP/s minutes later).

Training is timed at the recipes' batch (`--batch`, 64; keys without a suffix) and at larger ones
(`--more-batches`, default 256; keys ending ", batch 256"), where the small per-step matmuls of the
LSTM scans and the thin convolutions of the PixelCNNs run closer to the peaks.

Training is timed in two modes (`--modes`): eager, and compiled as `train.compile: true` (which
the Gated PixelCNN and PixelRNN recipes set; PixelCNN's trains eager, faster for it) trains: the
objective through torch.compile (the LSTM scans stay hand-written kernels outside the graph; the
convolutions, gates and output layers are fused and compiled). Rows are keyed by precision
(`bf16-mixed`, `fp32`), with ` compiled` appended for the compiled mode. The FLOPs are the same
in both modes (counted on the eager pass).

FLOPs are those of the matmuls and convolutions that run (torch.utils.flop_counter: mm, addmm,
bmm, baddbmm, convolution and their backward), 2 per multiply-add; elementwise work (gates,
activations, the masks' multiplications) is not counted. A masked kernel counts all its taps,
since the masked weight is applied densely; the Diagonal BiLSTM's recurrence runs over the
image's anti-diagonals, H x W positions (the paper's skewed map has H x (W + H - 1), about twice as
many, and chainrule computed all of them until 2026-12-06). Training FLOPs are counted on a real forward
and backward pass, so the backward pass counts what it computes (no gradient for the input image).

The sampling comparison draws the same seed through the cached sampler (activation caches for the
PixelCNNs, carried LSTM states for PixelRNN) and the generic one (the whole network once per
pixel), and checks the images are identical; the generic run is the slow one, so keep
`--sample-n` small (its time barely depends on n).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import best_time, read_result, write_result
from chainrule.compiling import compiled_or_eager
from chainrule.denormals import denormals_flushed
from chainrule.models import MODEL_REGISTRY, build_model
from chainrule.recipes import load_recipe
from chainrule.training import make_adam

try:
    from chainrule.allocator import allocations_kept
except ImportError:  # an older chainrule (image_speed_before_after's "before"), whose fit kept none
    from contextlib import nullcontext as allocations_kept

try:
    from chainrule.benchmark.common import onednn_matmul_kernel
except ImportError:  # an older chainrule ("before"): the same kernel, so both versions share peaks

    def onednn_matmul_kernel(
        dtype: torch.dtype, n: int = 1024, rows: int = 8192
    ) -> tuple[Callable[[], object], float]:
        x = torch.randn(rows // 64, n, 8, 8).to(dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(n, n, 1, 1).to(dtype)
        return (lambda: F.conv2d(x, w)), 2 * rows * n * n


#: (row name, recipe, model name if not the recipe's): PixelRNN's two layer types share one recipe
MODELS = [
    ("gated-pixelcnn", "recipes/gated-pixelcnn-mnist.yaml", None),
    ("pixelcnn", "recipes/pixelcnn-mnist.yaml", None),
    ("row-lstm", "recipes/pixelrnn-mnist.yaml", "row-lstm"),
    ("diagonal-bilstm", "recipes/pixelrnn-mnist.yaml", "diagonal-bilstm"),
]
#: --quick: every size option shrunk to this, on 12x12 images (a smoke test of the code only)
TINY = {"channels": 8, "layers": 1, "blocks": 1, "output_channels": 16}
QUICK_SIDE = 12


def conv_peak_kernel(
    dtype: torch.dtype, batch: int = 64, channels: int = 128, channels_last: bool = False
) -> tuple[Callable[[], object], float]:
    """A large 3x3 convolution (forward) on (N, C, H, W) or channels-last maps, and its FLOPs."""
    x = torch.randn(batch, channels, 28, 28).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).to(dtype)
    return (lambda: F.conv2d(x, w, padding=1)), 2 * batch * channels * channels * 9 * 28 * 28


def matmul_peak_kernel(dtype: torch.dtype, n: int = 2048) -> tuple[Callable[[], object], float]:
    """A square n^3 matmul (torch.mm: MKL on the CPU), and its FLOPs."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return (lambda: a @ b), 2 * n**3


#: each peak is the best of its kernels, all timed in the same rounds: the conv peak a 3x3
#: convolution in either layout (oneDNN runs channels-last maps natively and reorders (N, C, H, W)
#: ones: 397-450 against 431-473 GFLOP/s in bf16, 2026-12-07), the matmul peak a product through
#: MKL (torch.mm) or through oneDNN (fp32 on this AMD EPYC: MKL 126-195, oneDNN 186-226 GFLOP/s)
PEAK_KERNELS = {"conv": ("conv_nchw", "conv_channels_last"), "matmul": ("matmul_mm", "matmul_onednn")}


def peak_kernels(dtype: torch.dtype, quick: bool = False) -> dict[str, tuple[Callable[[], object], float]]:
    """Every kernel of `PEAK_KERNELS` with its FLOPs (`quick`: small shapes)."""
    conv = {"batch": 8, "channels": 16} if quick else {}
    return {
        "conv_nchw": conv_peak_kernel(dtype, **conv),
        "conv_channels_last": conv_peak_kernel(dtype, **conv, channels_last=True),
        "matmul_mm": matmul_peak_kernel(dtype, **({"n": 256} if quick else {})),
        "matmul_onednn": onednn_matmul_kernel(dtype, **({"n": 64, "rows": 256} if quick else {})),
    }


def with_peaks(gflops: dict[str, float]) -> dict[str, float]:
    """Each kernel's GFLOP/s plus the peaks ("conv", "matmul"): the best of their kernels."""
    return {**{peak: max(gflops[k] for k in kernels) for peak, kernels in PEAK_KERNELS.items()}, **gflops}


def counted_flops(fn: Callable[[], object]) -> float:
    """Matmul and convolution FLOPs of `fn()` (torch.utils.flop_counter)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def flops_per_image(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per example of the training objective."""
    with torch.no_grad():
        forward = counted_flops(lambda: model.log_prob(x))
    train = counted_flops(lambda: (-model.log_prob(x).mean()).backward())
    model.zero_grad(set_to_none=True)
    return forward / x.shape[0], train / x.shape[0]


def recipe_model(recipe: str, name: str | None, tiny: bool = False) -> tuple[nn.Module | None, bool]:
    """The recipe's architecture on 28x28 binary images (`tiny`: shrunk, on 12x12), as model
    `name` if given (None if the recipe or the model is absent), and whether it is the model the
    recipe trains."""
    try:
        spec = dict(load_recipe(recipe)["model"])
    except Exception:  # noqa: BLE001 - a missing recipe just skips that model
        return None, False
    trained = spec.pop("name")
    kind = name or trained
    if kind not in MODEL_REGISTRY:
        return None, False
    if tiny:
        spec.update({k: v for k, v in TINY.items() if k in spec})
    side = QUICK_SIDE if tiny else 28
    return build_model(kind, image_shape=[side, side], num_values=2, **spec), kind == trained


def training_step(model: nn.Module, batch: int, bf16: bool, compiled: bool = False) -> Callable[[], None]:
    """One full training step (forward, backward, fused Adam) on a fixed random batch; `compiled`:
    the objective through torch.compile, as `train.compile: true` (the image recipes') trains."""
    dim = model.event_shape[0]
    x = torch.bernoulli(torch.full((batch, dim), 0.3), generator=torch.Generator().manual_seed(0))
    opt = make_adam(model.parameters(), 1e-3)
    objective = model.log_prob
    if compiled:  # as the trainer's training_call: a fresh graph for this model and precision
        torch._dynamo.reset()
        objective = compiled_or_eager(model.training_log_prob, static=False)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = -objective(x).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def interleaved_best(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time (s) of each of `fns` over `rounds` rounds that call each once in turn (after
    one untimed call each): what is timed side by side sees the machine in the same states."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def train_throughput(
    model: nn.Module, batch: int, bf16: bool, repeats: int = 3, compiled: bool = False, quick: bool = False
) -> tuple[float, dict[str, float]]:
    """Images per second of full training steps (forward, backward, fused Adam), run as `fit` runs
    them: denormals flushed, freed memory kept for the next step (chainrule.allocator), and the
    conv and matmul peaks (GFLOP/s, the row's precision) timed in turn with the steps, 2 ×
    `repeats` rounds, best of each. The warm-up steps compile (`compiled`) and are not timed."""
    kernels = peak_kernels(torch.bfloat16 if bf16 else torch.float32, quick)
    with denormals_flushed(), allocations_kept():
        step = training_step(model, batch, bf16, compiled)
        if compiled:  # the first call compiles; interleaved_best's untimed call is the second
            step()
        best = interleaved_best({**{k: fn for k, (fn, _) in kernels.items()}, "step": step}, 2 * repeats)
    return batch / best["step"], with_peaks({k: flops / best[k] / 1e9 for k, (_, flops) in kernels.items()})


def timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def sampling(model: nn.Module, n: int) -> dict:
    """Cached vs generic sampling of n images with the same seed: times, ratio, equality."""
    model.eval()

    def draw(method: str) -> Callable[[], torch.Tensor]:
        return lambda: model.sample(n, generator=torch.Generator().manual_seed(0), method=method)

    fast_s, fast = timed(draw("fast"))
    slow_s, slow = timed(draw("generic"))
    return {
        "images": n,
        "image_shape": list(model.config()["image_shape"]),  # 28 x 28 but for --quick
        "cached_seconds": round(fast_s, 3),
        "generic_seconds": round(slow_s, 3),
        "speedup": round(slow_s / fast_s, 1),
        "identical_images": bool(torch.equal(fast, slow)),
        "fraction_of_pixels_equal": float((fast == slow).float().mean()),
    }


def measure_peaks(
    quick: bool = False, seconds_of: Callable[[str, Callable[[], object]], float] | None = None
) -> dict[str, float]:
    """Conv and matmul peaks (GFLOP/s) in fp32 and bf16 ("conv_bf16", ...), and each of their
    kernels' ("conv_channels_last_bf16", ...). A kernel's time is `seconds_of(kind, fn)`, by default
    its best wall time of 5 calls and at least a second (`quick`: small shapes, and the
    convolutions not held to the second)."""

    def best_wall(kind: str, fn: Callable[[], object]) -> float:
        return best_time(fn, repeats=5, min_seconds=0.0 if quick and kind.startswith("conv") else 1.0)

    seconds_of = seconds_of or best_wall
    peaks = {}
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        kernels = peak_kernels(dtype, quick)
        gflops = {kind: flops / seconds_of(kind, fn) / 1e9 for kind, (fn, flops) in kernels.items()}
        peaks.update({f"{kind}_{name}": v for kind, v in with_peaks(gflops).items()})
    return peaks


def model_flops(model: nn.Module) -> tuple[float, float]:
    """`flops_per_image` on a fixed batch of 8 random binary images."""
    x = torch.bernoulli(
        torch.full((8, model.event_shape[0]), 0.3), generator=torch.Generator().manual_seed(1)
    )
    return flops_per_image(model, x)


def throughput_row(
    model: nn.Module,
    train_flops: float,
    batch: int,
    bf16: bool,
    peaks: dict[str, float],
    repeats: int = 3,
    compiled: bool = False,
    quick: bool = False,
) -> dict:
    """Training images/s in one precision and mode, and the achieved GFLOP/s as fractions of the
    conv and matmul peaks timed in turn with the row's steps (`peaks`, the run's, measured once at
    its start, are kept for reference only: a slow moment there would misstate every row)."""
    ips, beside = train_throughput(model.train(), batch, bf16, repeats, compiled, quick)
    achieved = train_flops * ips / 1e9
    dtype = "bf16" if bf16 else "fp32"
    return {
        "images_per_s": round(ips, 1),
        "achieved_gflops": round(achieved, 1),
        "fraction_of_conv_peak": round(achieved / beside["conv"], 3),
        "fraction_of_matmul_peak": round(achieved / beside["matmul"], 3),
        "peaks_beside_gflops": {k: round(v, 1) for k, v in beside.items()},
        "fraction_of_run_conv_peak": round(achieved / peaks[f"conv_{dtype}"], 3),
        "epoch_minutes_50k": round(50_000 / ips / 60, 1),
    }


#: the training modes: eager, and compiled as `train.compile: true` runs it (row key suffix)
MODES = {"eager": "", "compiled": " compiled"}


def row_key(precision: str, mode: str, batch: int, recipe_batch: int) -> str:
    """A row's key: "bf16-mixed", "fp32 compiled", ...; ", batch N" where N is not the recipes'."""
    return precision + MODES[mode] + ("" if batch == recipe_batch else f", batch {batch}")


def run(
    batch: int = 64,
    sample_n: int = 4,
    quick: bool = False,
    modes: tuple[str, ...] | None = None,
    more_batches: tuple[int, ...] = (),
) -> dict:
    """Peaks, FLOPs, training rows and sampling of every image model; `modes` default to both,
    or eager alone with `quick` (compiling 8 graphs took a minute of the test suite with a cold
    inductor cache)."""
    modes = modes or (("eager",) if quick else tuple(MODES))
    torch.manual_seed(0)
    peaks = measure_peaks(quick)
    print({k: round(v) for k, v in peaks.items()}, flush=True)
    models = []
    for name, recipe, kind in MODELS:
        model, trained = recipe_model(recipe, kind, tiny=quick)
        if model is None:
            print(f"{name}: no recipe/model yet, skipped", flush=True)
            continue
        forward, train = model_flops(model)
        entry = {
            "model": name,
            "recipe": recipe,
            "recipe_model": trained,  # False: the recipe's sizes, the other PixelRNN layer type
            "config": model.config(),
            "parameters": model.num_parameters(),
            "forward_gflop_per_image": forward / 1e9,
            "train_gflop_per_image": train / 1e9,
        }
        for size in (batch, *more_batches):
            for mode in modes:
                for precision, bf16 in (("bf16-mixed", True), ("fp32", False)):
                    key = row_key(precision, mode, size, batch)
                    compiled = mode == "compiled"
                    row = throughput_row(model, train, size, bf16, peaks, 1 if quick else 3, compiled, quick)
                    entry[key] = row
                    print(name, key, row, flush=True)
        entry["sampling_28x28"] = sampling(model, sample_n)
        print(name, "sampling", entry["sampling_28x28"], flush=True)
        models.append(entry)
    return {
        "batch": batch,
        "more_batches": list(more_batches),
        "peaks_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "models": models,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64, help="the recipes' batch size (rows without a suffix)")
    p.add_argument(
        "--more-batches",
        type=int,
        nargs="*",
        default=[256],
        help="further batch sizes to time training at (rows keyed ', batch N'; default: 256)",
    )
    p.add_argument("--sample-n", type=int, default=4, help="images per sampling comparison")
    p.add_argument("--quick", action="store_true", help="tiny models on 12x12, one image: a smoke test")
    p.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        help="training modes to time (default: both; --quick: eager)",
    )
    args = p.parse_args()
    modes = tuple(args.modes) if args.modes else None
    if args.quick:
        result = run(min(args.batch, 4), 1, quick=True, modes=modes)
        assert all(m["sampling_28x28"]["identical_images"] for m in result["models"]), "samplers disagree"
        print(json.dumps(result)[:300], "... (not written: --quick)")
        return
    previous = read_result("image_speed")
    result = run(args.batch, args.sample_n, modes=modes, more_batches=tuple(args.more_batches))
    print("wrote", write_result("image_speed", keeping_earlier(result, previous)))


def keeping_earlier(result: dict, previous: dict | None) -> dict:
    """`result` plus what the file it replaces holds besides a run: its run becomes
    `previous_run` (for before/after), other sections (image_speed_compare's) stay."""
    if not previous:
        return result
    run_keys = ("machine", "batch", "more_batches", "peaks_gflops", "models")
    kept = {k: v for k, v in previous.items() if k not in run_keys}
    kept["previous_run"] = {k: previous[k] for k in run_keys if k in previous}
    return {**kept, **result}


if __name__ == "__main__":
    main()
