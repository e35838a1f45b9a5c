"""Every model on a CUDA device: log_prob agrees with the CPU, sampling and completion run on
the device, the fast sampler draws the generic sampler's values for the same seed (to rounding
for continuous models), a CPU generator drives the model on the device, and evaluate_nll scores
CPU-held data with the model on the device.

    python scripts/cuda_check.py [--out FILE.json]

The CI machines have no GPU, so this is the check to run where one is lent (see
docs/distributed.md, "On one GPU"). Each model is built small with random weights, in float32 with TF32
off so CPU and GPU agree to float rounding. A failing model is reported with its error, not
raised: one run lists every problem.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from collections.abc import Callable

import torch

from chainrule.evaluation import evaluate_nll
from chainrule.models import MODEL_REGISTRY, build_model

IMG = [6, 6]


def image_case(row: str, name: str, kind: str = "binary", **options) -> tuple[str, str, dict, str]:
    """A case for an image model on IMG-sized images."""
    return row, name, {"image_shape": IMG, **options}, kind


#: (row, registry name, options, data kind): small instances of every model
CASES: list[tuple[str, str, dict, str]] = [
    ("fvsbn", "fvsbn", {"dim": 12}, "binary"),
    ("fvsbn-categorical", "fvsbn", {"dim": 12, "num_values": 4}, "levels4"),
    ("nade", "nade", {"dim": 12, "hidden": 8}, "binary"),
    ("categorical-nade", "categorical-nade", {"dim": 12, "num_values": 4, "hidden": 8}, "levels4"),
    ("made", "made", {"dim": 12, "hidden": [16], "num_masks": 2}, "binary"),
    ("made-categorical", "made", {"dim": 12, "hidden": [16], "num_values": 4}, "levels4"),
    ("rnade", "rnade", {"dim": 5, "hidden": 8}, "continuous"),
    ("gaussian", "gaussian", {"dim": 5}, "continuous"),
    ("gaussian-mixture", "gaussian-mixture", {"dim": 5, "components": 3}, "continuous"),
    ("vae", "vae", {"dim": 12, "latent": 3, "hidden": [16]}, "binary"),
    image_case("pixelcnn", "pixelcnn", channels=8, blocks=2, output_channels=8),
    image_case("gated-pixelcnn", "gated-pixelcnn", channels=8, layers=3, output_channels=8),
    image_case(
        "gated-pixelcnn-logistic",
        "gated-pixelcnn",
        "levels256",
        num_values=256,
        channels=8,
        layers=2,
        head="logistic",
    ),
    image_case(
        "gated-pixelcnn-classes", "gated-pixelcnn", "binary+class", channels=8, layers=2, num_classes=3
    ),
    image_case("row-lstm", "row-lstm", channels=8, layers=1, output_channels=8),
    image_case("diagonal-bilstm", "diagonal-bilstm", channels=8, layers=1, output_channels=8),
    ("char-rnn", "char-rnn", {"num_values": 7, "embed": 8, "hidden": 16}, "tokens7"),
    ("transformer", "transformer", {"num_values": 7, "d_model": 16, "layers": 2, "heads": 2}, "tokens7"),
    ("wavenet", "wavenet", {"num_values": 7, "channels": 8, "skip_channels": 8}, "tokens7"),
]


def data(kind: str, model: torch.nn.Module, n: int, g: torch.Generator) -> tuple[torch.Tensor, object]:
    """A batch of valid inputs for `model` (and its condition), on the CPU."""
    shape = (n, *model.event_shape) if model.event_shape else (n, 10)
    if kind.startswith("binary"):
        x = torch.randint(0, 2, shape, generator=g).float()
    elif kind.startswith("levels"):
        x = torch.randint(0, int(kind[6:]), shape, generator=g).float()
    elif kind.startswith("tokens"):
        x = torch.randint(0, int(kind[6:]), shape, generator=g)
    else:
        x = torch.randn(shape, generator=g)
    cond = torch.randint(0, 3, (n,), generator=g) if kind.endswith("+class") else None
    return x, cond


def randomized(name: str, options: dict) -> torch.nn.Module:
    """The model with seeded random weights (no conditional trivially uniform)."""
    model = build_model(name, **options).float()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def check(row: str, name: str, options: dict, kind: str, device: torch.device) -> dict:
    """One model: log_prob CPU vs device, fast vs generic sampling and completion on the device."""
    result: dict = {"model": row}
    cpu = randomized(name, options)
    gpu = randomized(name, options).to(device)
    x, cond = data(kind, cpu, 16, torch.Generator().manual_seed(1))
    on = lambda t: None if t is None else t.to(device)  # noqa: E731
    steps: list[tuple[str, Callable[[], object]]] = []

    def log_prob() -> float | str:
        if name == "vae":  # an importance-sampled estimate: the two devices draw different noise
            with torch.no_grad():
                b = gpu.log_prob(on(x))
            assert b.device.type == device.type, f"log_prob returned a tensor on {b.device}"
            return "stochastic estimate: ran on the device, not compared"
        with torch.no_grad():
            a = cpu.log_prob(x, cond) if cond is not None else cpu.log_prob(x)
            b = gpu.log_prob(on(x), on(cond)) if cond is not None else gpu.log_prob(on(x))
        assert b.device.type == device.type, f"log_prob returned a tensor on {b.device}"
        return float((a - b.cpu()).abs().max() / a.abs().max().clamp_min(1.0))

    def sample(method: str) -> torch.Tensor:
        g = torch.Generator(device=device).manual_seed(7)
        kw = {"generator": g}
        if "method" in gpu.sample.__code__.co_varnames or kind.startswith(("binary", "levels", "tokens")):
            kw["method"] = method
        if kind.startswith("tokens"):
            kw["length"] = 10
        c = on(cond[:4]) if cond is not None else None
        try:
            s = gpu.sample(4, c, **kw)
        except TypeError:  # a sampler without a `method`: one way only
            kw.pop("method", None)
            s = gpu.sample(4, c, **kw)
        assert s.device.type == device.type, f"sample returned a tensor on {s.device}"
        return s

    def fast_vs_generic() -> dict:
        a, b = sample("fast"), sample("generic")
        if kind != "continuous":
            return {"fast_equals_generic": bool(torch.equal(a, b))}
        # Real values: RNADE's fast sampler keeps each hidden pre-activation as a running sum
        # (a += x_d W_d, one step per dimension) while the generic one recomputes it from a prefix
        # sum (cumsum, a parallel scan on a GPU) and a batched einsum: the same arithmetic in
        # another order, which rounds differently in the last bits (tests/test_continuous_models.py
        # checks the two agree to 1e-12 in float64). So for continuous models the check is closeness,
        # not equality. Discrete values come from comparing a uniform with a cdf, where such
        # rounding (almost) never flips a draw, so they are compared exactly.
        return {
            "fast_generic_max_abs_diff": float((a - b).abs().max()),
            "fast_generic_allclose": bool(torch.allclose(a, b, atol=1e-5)),
        }

    def completion() -> bool:
        if kind.startswith("tokens"):
            mask = torch.zeros(x.shape[1], dtype=torch.bool)
            mask[:4] = True
        else:
            mask = torch.zeros(cpu.event_shape, dtype=torch.bool)
            mask.view(-1)[: mask.numel() // 2] = True
        given = on(x[:4])
        c = on(cond[:4]) if cond is not None else None
        g = torch.Generator(device=device).manual_seed(3)
        out = gpu.sample(4, c, given=given, mask=on(mask), generator=g)
        kept = out.reshape(4, -1)[:, mask.reshape(-1).to(device)] == given.reshape(4, -1)[:, mask.reshape(-1)]
        return bool(kept.all())

    def cpu_generator() -> bool:
        c = on(cond[:4]) if cond is not None else None
        kw = {"length": 10} if kind.startswith("tokens") else {}
        s = gpu.sample(4, c, generator=torch.Generator().manual_seed(7), **kw)
        assert s.device.type == device.type, f"sample returned a tensor on {s.device}"
        return True

    def evaluate_cpu_data() -> float | str:
        if name == "vae":
            evaluate_nll(gpu, x, batch_size=5)
            return "stochastic estimate: ran on the device, not compared"
        a = evaluate_nll(cpu, x, batch_size=5, cond=cond).nll_nats
        b = evaluate_nll(gpu, x, batch_size=5, cond=cond).nll_nats
        return abs(a - b) / max(abs(a), 1.0)

    steps = [("log_prob_rel_diff", log_prob), ("fast_equals_generic", fast_vs_generic)]
    steps.append(("completion_keeps_observed", completion))
    steps.append(("cpu_generator_samples_on_device", cpu_generator))
    steps.append(("evaluate_nll_cpu_data_rel_diff", evaluate_cpu_data))
    for key, fn in steps:
        try:
            value = fn()
            result.update(value if isinstance(value, dict) else {key: value})
        except Exception as e:  # report every model's problem, then go on
            result[key] = f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            result.setdefault("traceback", traceback.format_exc(limit=-3))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--device", default="cuda", help="torch device to check (default cuda)")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    missing = sorted(set(MODEL_REGISTRY) - {c[1] for c in CASES})
    rows = [check(*case, device) for case in CASES]
    for r in rows:
        print({k: v for k, v in r.items() if k != "traceback"})
        if "traceback" in r:
            print(r["traceback"])
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "models_not_checked": missing,
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
