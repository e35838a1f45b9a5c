"""Exact evaluation speed of a deep order-agnostic NADE (`deep-nade`): chainrule's `ordering_terms`,
which keeps the first layer's pre-activation as a running sum (one column added per position),
against the plain formulation, a full network pass over [x * m, m] at each of the D positions,
timed alternately in the same process. Both give the same terms (the largest difference is
reported). Also the time the paper's 128-ordering test evaluation (EoNADE, 10,000 images) takes
at that speed. Writes benchmarks/results/deep_nade_eval_speed.json.

    python -m benchmarks.deep_nade_eval_speed                # 2 layers of 500, 500 images, 2 threads
    python -m benchmarks.deep_nade_eval_speed --quick        # a small network, for the tests
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.common import write_result
from chainrule.models import DeepNADE
from chainrule.models.deep_nade import ROWS_PER_PASS


def full_pass_terms(model: DeepNADE, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The plain formulation: at every position t the whole network reads [x * m_t, m_t], m_t the
    dimensions before t; log p(x_{o_t} | x_{o_<t}) by position, (B, D)."""
    b, out = x.shape[0], []
    per_pass = max(1, ROWS_PER_PASS // b)
    position = torch.empty_like(order).index_copy_(0, order, torch.arange(model.dim))
    for start in range(0, model.dim, per_pass):
        stop = min(start + per_pass, model.dim)
        known = (position < torch.arange(start, stop).unsqueeze(1)).unsqueeze(1).expand(-1, b, -1)
        h = model._hidden(x.unsqueeze(0).expand(stop - start, -1, -1), known)
        dims = order[start:stop]
        logits = torch.einsum("tbh,th->tb", h, model.out_weight[dims, :, 0]) + model.out_bias[dims, 0, None]
        out.append(model.head.log_prob(logits, x[:, dims].T).T)
    return torch.cat(out, 1)


def run(quick: bool = False, images: int = 500, threads: int = 2, rounds: int = 4) -> dict:
    """Alternate the two formulations `rounds` times on `images` random binary images."""
    torch.set_num_threads(threads)
    dim, hidden = (64, 32) if quick else (784, 500)
    images = 20 if quick else images
    model = DeepNADE(dim, hidden=hidden, layers=2, num_orderings=2, seed=0).eval()
    x = (torch.rand(images, dim, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    order = model.orderings[0]
    times: dict[str, list[float]] = {"running_sum": [], "full_pass": []}
    with torch.no_grad():
        ours, plain = model.ordering_terms(x, order), full_pass_terms(model, x, order)
        for _ in range(rounds):
            for name, fn in (("running_sum", model.ordering_terms), ("full_pass", full_pass_terms)):
                start = time.perf_counter()
                fn(x, order) if name == "running_sum" else fn(model, x, order)
                times[name].append(time.perf_counter() - start)
    per_image = {k: statistics.median(v) / images for k, v in times.items()}
    return {
        "dim": dim,
        "hidden": hidden,
        "layers": 2,
        "images": images,
        "threads": threads,
        "rounds": rounds,
        "ms_per_image_per_ordering": {k: 1000 * v for k, v in per_image.items()},
        "speedup": per_image["full_pass"] / per_image["running_sum"],
        "max_abs_term_difference": float((ours - plain).abs().max()),
        "eonade_128_orderings_10000_images_minutes": {k: v * 128 * 10_000 / 60 for k, v in per_image.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small network (for the tests)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = run(args.quick, args.images, args.threads)
    print(result)
    if not args.quick:
        print(write_result("deep_nade_eval_speed", result))


if __name__ == "__main__":
    main()
