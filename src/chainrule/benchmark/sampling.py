"""Fast samplers (which reuse work between dimensions) against the generic one-pass-per-dimension
sampler: seconds, speed-up, and whether both give identical samples for the same seed."""

from __future__ import annotations

import torch

from chainrule.benchmark.common import best_time
from chainrule.models import FVSBN, MADE, NADE

D = 784


def compare(model, n: int) -> dict:
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    model.eval()
    t_fast = best_time(lambda: model.sample(n, generator=g()), repeats=3)
    t_gen = best_time(lambda: model.sample(n, generator=g(), method="generic"), repeats=1, warmup=0)
    same = torch.equal(model.sample(n, generator=g()), model.sample(n, generator=g(), method="generic"))
    return {"n": n, "fast_s": t_fast, "generic_s": t_gen, "speedup": t_gen / t_fast, "identical": same}


def run(full: bool = False, n: int = 16) -> dict:
    torch.manual_seed(0)
    models = {"fvsbn": FVSBN(D), "nade-500": NADE(D, hidden=500), "made-2000": MADE(D, hidden=[2000])}
    if full:
        models["made-8000"] = MADE(D, hidden=[8000])
    out = {}
    for name, model in models.items():
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.05)
        s = compare(model, n)
        out[name] = s
        print(
            f"sampling {name:10s}: fast {s['fast_s']:.3f}s generic {s['generic_s']:.2f}s"
            f" speed-up {s['speedup']:.0f}x identical={s['identical']}",
            flush=True,
        )
    return {"sampling": out, "dims": D}
