"""Every registered model on a CUDA device: log_prob agrees with the CPU, sampling and completion
run on the device, the fast sampler draws the generic sampler's values for the same seed (to
rounding for continuous models), a CPU generator drives the model on the device, and
evaluate_nll scores CPU-held data with the model on the device.

    python scripts/cuda_check.py [--out FILE.json] [--device cuda] [--only NAME,NAME]

The CI machines have no GPU, so this is the check to run where one is lent (see
docs/distributed.md, "On one GPU"). Every model in MODEL_REGISTRY (the graphical models
included) is built from its class's tiny_config() with chainrule.checks.tiny_model (seeded,
the contract suite's instance), in float32 with TF32 off so CPU and GPU agree to float rounding;
the device copy is a deep copy of the CPU model. A failing model is reported with its error, not
raised: one run lists every problem.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable

import torch

from chainrule.checks.support import (
    NotApplicable,
    condition,
    draw,
    is_sequence,
    takes,
    tiny_model,
)
from chainrule.evaluation import evaluate_nll
from chainrule.models import MODEL_REGISTRY
from chainrule.persistence import register_everything

#: tokens per sequence for the variable-length models
LENGTH = 10


def check(name: str, device: torch.device) -> dict:
    """One model: log_prob CPU vs device, fast vs generic sampling and completion on the device."""
    result: dict = {"model": name}
    cpu = tiny_model(name).float()
    gpu = copy.deepcopy(cpu).to(device)
    cond = condition(cpu, 16, seed=1)  # on the CPU, as the CPU model is
    x = draw(cpu, 16, cond, seed=1, length=LENGTH)
    on = lambda t: None if t is None else t.to(device)  # noqa: E731
    estimate = not cpu.exact_log_prob  # an importance-sampled estimate: devices draw different noise
    continuous = cpu.value_type == "continuous"
    length = {"length": LENGTH} if is_sequence(cpu) else {}
    c4 = None if cond is None else cond[:4]

    def log_prob() -> float | str:
        with torch.no_grad():
            b = gpu.log_prob(on(x), on(cond))
            assert b.device.type == device.type, f"log_prob returned a tensor on {b.device}"
            if estimate:
                return "stochastic estimate: ran on the device, not compared"
            a = cpu.log_prob(x, cond)
        return float((a - b.cpu()).abs().max() / a.abs().max().clamp_min(1.0))

    def sample(**kw) -> torch.Tensor:
        g = torch.Generator(device=device).manual_seed(7)
        with torch.no_grad():
            s = gpu.sample(4, on(c4), generator=g, **length, **kw)
        assert s.device.type == device.type, f"sample returned a tensor on {s.device}"
        return s

    def fast_vs_generic() -> dict:
        if not takes(gpu.sample, "method"):
            sample()
            return {"fast_equals_generic": "one sampler only: ran on the device"}
        a, b = sample(method="fast"), sample(method="generic")
        if not continuous:
            return {"fast_equals_generic": bool(torch.equal(a, b))}
        # Real values: a fast sampler may keep a running sum where the generic one recomputes it
        # (a prefix sum, a parallel scan on a GPU): the same arithmetic in another order, which
        # rounds differently in the last bits. So for continuous models the check is closeness,
        # not equality. Discrete values come from comparing a uniform with a cdf, where such
        # rounding (almost) never flips a draw, so they are compared exactly.
        return {
            "fast_generic_max_abs_diff": float((a - b).abs().max()),
            "fast_generic_allclose": bool(torch.allclose(a, b, atol=1e-5)),
        }

    def completion() -> bool:
        given = x[:4]
        if is_sequence(cpu):
            mask = torch.zeros(given.shape[1], dtype=torch.bool)
            mask[:4] = True
        else:
            mask = torch.zeros(given.shape[1:], dtype=torch.bool)
            mask.view(-1)[: mask.numel() // 2] = True
        g = torch.Generator(device=device).manual_seed(3)
        with torch.no_grad():
            out = gpu.sample(4, on(c4), given=on(given), mask=on(mask), generator=g)
        keep = mask.reshape(-1)
        kept = out.reshape(4, -1)[:, keep.to(device)].cpu() == given.reshape(4, -1)[:, keep].to(out.dtype)
        return bool(kept.all())

    def cpu_generator() -> bool:
        with torch.no_grad():
            s = gpu.sample(4, on(c4), generator=torch.Generator().manual_seed(7), **length)
        assert s.device.type == device.type, f"sample returned a tensor on {s.device}"
        return True

    def evaluate_cpu_data() -> float | str:
        b = evaluate_nll(gpu, x, batch_size=5, cond=cond).nll_nats
        if estimate:
            return "stochastic estimate: ran on the device, not compared"
        a = evaluate_nll(cpu, x, batch_size=5, cond=cond).nll_nats
        return abs(a - b) / max(abs(a), 1.0)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("log_prob_rel_diff", log_prob),
        ("fast_equals_generic", fast_vs_generic),
        ("completion_keeps_observed", completion),
        ("cpu_generator_samples_on_device", cpu_generator),
        ("evaluate_nll_cpu_data_rel_diff", evaluate_cpu_data),
    ]
    for key, fn in steps:
        try:
            value = fn()
            result.update(value if isinstance(value, dict) else {key: value})
        except Exception as e:  # report every model's problem, then go on
            result[key] = f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            result.setdefault("traceback", traceback.format_exc(limit=-3))
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--device", default="cuda", help="torch device to check (default cuda)")
    p.add_argument("--only", help="comma-separated registry names to check (default: every registered model)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "cuda_check: no CUDA device here (torch.cuda.is_available() is False, torch"
            f" {torch.__version__}); run it on a machine with a GPU, or pass --device"
        )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    register_everything()  # the graphical models register on import too
    names = sorted(MODEL_REGISTRY)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            sys.exit(f"cuda_check: unknown model(s) {unknown}; registered: {names}")
        names = wanted
    rows, missing = [], []
    for name in names:
        try:
            rows.append(check(name, device))
        except NotApplicable as e:  # no condition the check can build (e.g. image-conditioned)
            missing.append(name)
            print(f"{name}: not checked ({e})")
        except Exception as e:  # building the model failed: report it as its row
            first = str(e).splitlines()[0] if str(e) else ""
            rows.append({"model": name, "build": f"ERROR {type(e).__name__}: {first}"})
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
