"""How an order-agnostic NADE's ensemble gains with its size: the exact test NLL of the uniform
mixture of the first m orderings, m = 1, 2, 4, ..., all of them, on the first test images, with
each ordering's own NLL (mean, best, worst) beside it. Each ordering is scored once and the
mixtures are built from the per-ordering log-likelihoods, so the curve costs one evaluation of
the full ensemble. Writes benchmarks/results/deep_nade_ensemble_curve.json.

    python -m benchmarks.deep_nade_ensemble_curve                       # zoo/deep-nade-mnist, 1,000 images
    python -m benchmarks.deep_nade_ensemble_curve --images 200 --model-dir DIR
"""

from __future__ import annotations

import argparse
import math

import torch
from tqdm import tqdm

from benchmarks.common import write_result
from chainrule.data import load_dataset
from chainrule.persistence import load


def per_ordering_log_probs(model, x: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """log p(x) under each ordering alone, (orderings, N), float64."""
    rows = []
    with torch.no_grad():
        for m in tqdm(range(model.num_orderings), desc="orderings"):
            order = model.orderings[m]
            parts = [
                model.ordering_terms(x[i : i + batch_size], order).sum(1)
                for i in range(0, len(x), batch_size)
            ]
            rows.append(torch.cat(parts).double())
    return torch.stack(rows)


def curve(per: torch.Tensor) -> list[dict]:
    """NLL of the mixture of the first m orderings, m doubling up to all (and all, if not a power of 2)."""
    sizes = [2**k for k in range(int(math.log2(len(per))) + 1)]
    sizes += [len(per)] if sizes[-1] != len(per) else []
    return [
        {"orderings": m, "nll_nats": float(-(torch.logsumexp(per[:m], 0) - math.log(m)).mean())}
        for m in sizes
    ]


def run(model_dir: str = "zoo/deep-nade-mnist", images: int = 1000, threads: int = 2) -> dict:
    torch.set_num_threads(threads)
    model = load(model_dir).eval()
    data = load_dataset("binarized-mnist")
    x = model.prepare(data.test[:images])
    per = per_ordering_log_probs(model, x)
    singles = -per.mean(1)
    return {
        "model_dir": model_dir,
        "images": f"the first {images} test images (binarized-mnist)",
        "threads": threads,
        "curve": curve(per),
        "single_orderings": {
            "mean_nll": float(singles.mean()),
            "best_nll": float(singles.min()),
            "worst_nll": float(singles.max()),
        },
        "note": "by Jensen's inequality a mixture scores no worse than its members' mean log-likelihood",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="zoo/deep-nade-mnist")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    result = run(args.model_dir, args.images, args.threads)
    path = write_result("deep_nade_ensemble_curve", result)
    for row in result["curve"]:
        print(f"{row['orderings']:>4} orderings: {row['nll_nats']:.2f}")
    print(result["single_orderings"], "->", path)


if __name__ == "__main__":
    main()
