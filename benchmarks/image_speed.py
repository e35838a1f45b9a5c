"""Image models' speed: cached vs generic sampling of 28x28 images, training throughput and
achieved FLOP/s as a fraction of a convolution peak measured in the same run.

    python -m benchmarks.image_speed            # -> benchmarks/results/image_speed.json

Models are the zoo recipes' architectures (randomly initialised: speed does not depend on the
weights). The conv peak is the best of a few large 3x3 convolutions (batch 64, 128 -> 128
channels on 28x28) in the same precision; the matmul peak is reported beside it.
FLOPs count the convolutions only (2 x multiply-adds, all taps of masked kernels included, since
the masked weight is applied densely); a training step is counted as 3 forward passes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import best_time, matmul_peak_gflops, write_result
from chainrule.models import MODEL_REGISTRY, build_model
from chainrule.recipes import load_recipe
from chainrule.training import make_adam

RECIPES = {
    "gated-pixelcnn": "recipes/gated-pixelcnn-mnist.yaml",
    "pixelcnn": "recipes/pixelcnn-mnist.yaml",
    "pixelrnn": "recipes/pixelrnn-mnist.yaml",
}


def conv_peak_gflops(dtype: torch.dtype) -> float:
    """GFLOP/s of a large 3x3 convolution (forward), the practical peak for these models."""
    x = torch.randn(64, 128, 28, 28).to(dtype)
    w = torch.randn(128, 128, 3, 3).to(dtype)
    flops = 2 * 64 * 128 * 128 * 9 * 28 * 28
    return flops / best_time(lambda: F.conv2d(x, w, padding=1), repeats=5, min_seconds=1.0) / 1e9


def conv_flops_per_image(model: nn.Module, x: torch.Tensor) -> float:
    """Forward FLOPs of every Conv2d/Conv1d per example, counted with hooks on one pass."""
    total = [0.0]

    def hook(mod, inp, out):
        k = mod.weight[0].numel()  # in_channels * kernel taps
        total[0] += 2.0 * out.numel() * k

    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d))]
    handles = [m.register_forward_hook(hook) for m in convs]
    with torch.no_grad():
        model.log_prob(x)
    for h in handles:
        h.remove()
    return total[0] / x.shape[0]


def recipe_model(name: str) -> nn.Module | None:
    """The recipe's architecture on 28x28 binary images (None if the recipe is absent)."""
    try:
        spec = dict(load_recipe(RECIPES[name])["model"])
    except Exception:  # noqa: BLE001 - a missing recipe just skips that model
        return None
    if spec["name"] not in MODEL_REGISTRY:
        return None
    kind = spec.pop("name")
    return build_model(kind, image_shape=[28, 28], num_values=2, **spec)


def train_throughput(model: nn.Module, batch: int, bf16: bool) -> float:
    """Images per second of full training steps (forward, backward, fused Adam)."""
    x = torch.bernoulli(torch.full((batch, 784), 0.3), generator=torch.Generator().manual_seed(0))
    opt = make_adam(model.parameters(), 1e-3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = -model.log_prob(x).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return batch / best_time(step, repeats=3, warmup=1)


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
        "cached_seconds": round(fast_s, 3),
        "generic_seconds": round(slow_s, 3),
        "speedup": round(slow_s / fast_s, 1),
        "identical_images": bool(torch.equal(fast, slow)),
        "fraction_of_pixels_equal": float((fast == slow).float().mean()),
    }


def run(batch: int = 64, sample_n: int = 4) -> dict:
    torch.manual_seed(0)
    peaks = {
        "conv_fp32": conv_peak_gflops(torch.float32),
        "conv_bf16": conv_peak_gflops(torch.bfloat16),
        "matmul_fp32": matmul_peak_gflops(torch.float32),
        "matmul_bf16": matmul_peak_gflops(torch.bfloat16),
    }
    print({k: round(v) for k, v in peaks.items()}, flush=True)
    models = []
    for name in RECIPES:
        model = recipe_model(name)
        if model is None:
            print(f"{name}: no recipe/model yet, skipped", flush=True)
            continue
        x = torch.bernoulli(torch.full((8, 784), 0.3))
        flops = conv_flops_per_image(model, x)
        entry = {"model": name, "config": model.config(), "parameters": model.num_parameters()}
        entry["forward_gflop_per_image"] = flops / 1e9
        for precision, bf16 in (("bf16-mixed", True), ("fp32", False)):
            ips = train_throughput(model.train(), batch, bf16)
            achieved = 3 * flops * ips / 1e9
            peak = peaks["conv_bf16" if bf16 else "conv_fp32"]
            entry[precision] = {
                "images_per_s": round(ips, 1),
                "achieved_gflops": round(achieved, 1),
                "fraction_of_conv_peak": round(achieved / peak, 3),
                "epoch_minutes_50k": round(50_000 / ips / 60, 1),
            }
            print(name, precision, entry[precision], flush=True)
        entry["sampling_28x28"] = sampling(model, sample_n)
        print(name, "sampling", entry["sampling_28x28"], flush=True)
        models.append(entry)
    return {"batch": batch, "peaks_gflops": {k: round(v, 1) for k, v in peaks.items()}, "models": models}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sample-n", type=int, default=4, help="images per sampling comparison")
    args = p.parse_args()
    path = write_result("image_speed", run(args.batch, args.sample_n))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
