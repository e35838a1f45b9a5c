"""Choose the background model of the likelihood-ratio OOD score on validation data.

    python -m benchmarks.ood_background_sweep --model zoo/gated-pixelcnn-fashion-gpu \\
        --backgrounds runs/bg05/model runs/bg10/model runs/bg20/model \\
        --data fashion-mnist --ood mnist-8bit -n 1000

The likelihood ratio log p(x) - log p_bg(x) (Ren et al. 2019) depends on how the background model
was trained (perturbation rate, weight decay, length). Ren et al. pick those on held-out data; so
does this script: the foreground and every candidate background score the first N *validation*
images of --data and of --ood, and the AUROC, AUPR and FPR@95 of each background's ratio are
written to benchmarks/results/ood_background_sweep.json (merged: a run replaces the entries of the
same foreground, background and data, and keeps the others). Test images are never looked at, so
the chosen pair can then be measured once on the test split with benchmarks/ood.py.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.common import RESULTS, machine_info, write_result
from benchmarks.ood import merge, model_name
from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.persistence import load
from chainrule.tasks.anomaly import (
    check_data_fits,
    check_same_kind,
    format_table,
    likelihood_ratio_score,
    log_likelihood,
)
from chainrule.tasks.ood_metrics import ood_metrics

WHAT = (
    "Likelihood-ratio OOD score of one foreground model against candidate background models, on"
    " validation images (model selection); written by benchmarks/ood_background_sweep.py"
)


def sweep(model_dir: str, background_dirs: list[str], data_name: str, ood_name: str, n: int) -> list[dict]:
    """One entry per background: the ratio's metrics on the first `n` validation images a side."""
    model = load(model_dir)
    data, ood = load_dataset(data_name), load_dataset(ood_name)
    check_data_fits(model, data, data_name)
    check_data_fits(model, ood, ood_name)
    x_in, x_ood = data.split("val")[:n].float(), ood.split("val")[:n].float()
    log_p_in = log_likelihood(model, x_in, desc=f"log p({data_name})")
    log_p_ood = log_likelihood(model, x_ood, desc=f"log p({ood_name})")
    nll = ood_metrics(-log_p_in, -log_p_ood)
    entries = []
    for background_dir in background_dirs:
        t0 = time.time()
        background = load(background_dir)
        check_same_kind(model, background)
        lr_in = likelihood_ratio_score(log_p_in, log_likelihood(background, x_in, desc="log p_bg(in)"))
        lr_ood = likelihood_ratio_score(log_p_ood, log_likelihood(background, x_ood, desc="log p_bg(ood)"))
        means = {"mean_in": float(lr_in.mean()), "mean_ood": float(lr_ood.mean())}
        metrics = {**ood_metrics(lr_in, lr_ood).as_dict(), **means}
        print(f"{model_name(background_dir)}:\n" + format_table({"likelihood_ratio": metrics}))
        entries.append(
            {
                "model": model_name(model_dir),
                "model_dir": model_dir,
                "background": model_name(background_dir),
                "background_dir": background_dir,
                "data": data_name,
                "ood_data": ood_name,
                "split": "val",
                "n_in": len(x_in),
                "n_ood": len(x_ood),
                "likelihood_ratio": metrics,
                "nll": nll.as_dict(),
                "seconds": round(time.time() - t0, 1),
                "machine": machine_info(),
            }
        )
    return entries


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="foreground model folder")
    p.add_argument("--backgrounds", nargs="+", required=True, help="candidate background model folders")
    p.add_argument("--data", default="fashion-mnist", help="in-distribution dataset (default fashion-mnist)")
    p.add_argument("--ood", default="mnist-8bit", help="OOD dataset (default mnist-8bit)")
    p.add_argument("-n", type=int, default=1000, help="validation images per side (default 1000)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    torch.set_num_threads(args.threads)
    entries = sweep(args.model, args.backgrounds, args.data, args.ood, args.n)
    best = max(entries, key=lambda e: e["likelihood_ratio"]["auroc"])
    auroc = best["likelihood_ratio"]["auroc"]
    print(f"best background on validation: {best['background']} (AUROC {auroc:.4f})")
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m benchmarks.ood_background_sweep " + " ".join(given)
    key = ("model", "background", "data", "ood_data")
    runs = merge(entries, RESULTS / "ood_background_sweep.json", key)
    path = write_result("ood_background_sweep", {"what": WHAT, "last_command": command.strip(), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except ChainruleError as e:
        sys.exit(f"error: {e}")
