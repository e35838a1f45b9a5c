"""Out-of-distribution detection with trained models: AUROC, AUPR and FPR@95 of every score.

    python -m benchmarks.ood                       # zoo MNIST models vs Fashion-MNIST and silhouettes
    python -m benchmarks.ood --models --independent --data fashion-mnist --ood mnist-8bit
                                                   # the known failure with a model counted in seconds
    python -m benchmarks.ood --models runs/fashion/model --background runs/fashion-bg/model \\
        --data fashion-mnist --ood mnist-8bit      # a Fashion-trained 8-bit model, likelihood ratio

Each model scores the first N test images of --data (in-distribution) and of each --ood dataset;
the typicality reference Ĥ is the mean NLL of the first N validation images of --data. Scores:
see `chainrule.tasks.anomaly`; `typicality_batch_m10` is the batch test on random disjoint batches
of 10 inputs (N / 10 batches a side). Results are merged into benchmarks/results/ood.json (a run
replaces the entries of the same model, data, OOD data and background model, and keeps the
others); histograms of the first model's scores go to --figures as ood-<model>-<ood data>.png
(ood-<model>-<ood data>-bg-<background>.png with a background model).

`--independent` adds the independent-pixel model p(x) = Π_d p_d(x_d) counted on the training split
(seconds, no gradient training) with a background model counted on perturbed training data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, machine_info, write_result
from chainrule.data import Dataset, load_dataset
from chainrule.data.perturb import perturb
from chainrule.errors import ChainruleError
from chainrule.graphical.independent import IndependentModel
from chainrule.persistence import load
from chainrule.report import score_histograms
from chainrule.tasks.anomaly import (
    batch_typicality,
    check_data_fits,
    check_same_kind,
    format_table,
    log_likelihood,
    score_inputs,
    scores_from_log_likelihoods,
)
from chainrule.tasks.compression import SINGLE_COMPRESSORS, code_lengths
from chainrule.tasks.ood_metrics import ood_metrics

DEFAULT_MODELS = ("zoo/nade-mnist", "zoo/made-mnist", "zoo/fvsbn-mnist", "zoo/vae-mnist")
DEFAULT_OOD = ("binarized-fashion-mnist", "binarized-animal-silhouettes")
BATCH_M = 10
WHAT = (
    "OOD detection: AUROC / AUPR / FPR@95 (OOD = positive) of NLL, bits/dim, likelihood ratio,"
    " input complexity and typicality scores of trained models; written by benchmarks/ood.py"
)


def mean_code_bits(x: torch.Tensor, image_shape, num_values: int) -> dict[str, float]:
    """Mean bits per image of each lossless compressor and of `best` (which the scores use)."""
    out = {c: float(code_lengths(x, image_shape, num_values, c).mean()) for c in SINGLE_COMPRESSORS}
    out["best"] = float(code_lengths(x, image_shape, num_values, "best").mean())
    return out


def summarize(scores_in: dict, scores_ood: dict, reference: float, seed: int) -> dict:
    """{score: metrics and means}, plus the batch typicality test with M = BATCH_M."""
    summary = {
        k: {
            **ood_metrics(scores_in[k], scores_ood[k]).as_dict(),
            "mean_in": float(scores_in[k].mean()),
            "mean_ood": float(scores_ood[k].mean()),
        }
        for k in scores_in
    }
    g = torch.Generator().manual_seed(seed)
    batch_in = batch_typicality(scores_in["nll"], reference, BATCH_M, g)
    batch_ood = batch_typicality(scores_ood["nll"], reference, BATCH_M, g)
    summary[f"typicality_batch_m{BATCH_M}"] = {
        **ood_metrics(batch_in, batch_ood).as_dict(),
        "mean_in": float(batch_in.mean()),
        "mean_ood": float(batch_ood.mean()),
        "batches_per_side": [len(batch_in), len(batch_ood)],
    }
    return summary


def report(
    name: str,
    data: Dataset,
    ood: Dataset,
    x: tuple[torch.Tensor, torch.Tensor],
    scores: tuple[dict, dict],
    reference: float,
    seed: int,
    figures: Path | None,
    **fields,
) -> dict:
    """One entry of ood.json: metrics, code lengths, the histogram picture; printed as a table."""
    (x_in, x_ood), (scores_in, scores_ood) = x, scores
    data_name, ood_name = data.name, ood.name
    summary = summarize(scores_in, scores_ood, reference, seed)
    n_reference = fields.pop("n_reference")
    print(f"\n{name}: {data_name} vs {ood_name}, {len(x_in)} + {len(x_ood)} test images", flush=True)
    print(format_table(summary), flush=True)
    figure = None
    if figures is not None:
        background = fields.get("background_dir")
        suffix = f"-bg-{model_name(background)}" if background else ""
        figure = figures / f"ood-{name}-{ood_name}{suffix}.png"
        score_histograms(
            scores_in,
            scores_ood,
            figure,
            labels=(f"{data_name} (in)", f"{ood_name} (OOD)"),
            aurocs={k: v["auroc"] for k, v in summary.items()},
            title=f"{name}: {len(x_in)} {data_name} vs {len(x_ood)} {ood_name} test images",
        )
    return {
        "model": name,
        **fields,
        "data": data_name,
        "ood_data": ood_name,
        "split": "test",
        "n_in": len(x_in),
        "n_ood": len(x_ood),
        "typicality_reference": {"split": "val", "n": n_reference, "nll_mean": reference},
        "compressor": "best",
        "code_bits_mean": {
            data_name: mean_code_bits(x_in, data.image_shape, data.num_values),
            ood_name: mean_code_bits(x_ood, ood.image_shape, ood.num_values),
        },
        "scores": summary,
        "figure": str(figure) if figure else None,
        "machine": machine_info(),
    }


def run_model(
    model_dir: str,
    data_name: str,
    ood_names: list[str],
    n: int,
    background_dir: str | None,
    vae_k: int,
    seed: int,
    figures: Path | None,
) -> list[dict]:
    """Entries (one per OOD dataset) for one saved model; in-distribution scores are computed once."""
    model = load(model_dir)
    background = load(background_dir) if background_dir else None
    if background is not None:
        check_same_kind(model, background)
    data = load_dataset(data_name)
    check_data_fits(model, data, data_name)
    x_in, x_ref = data.split("test")[:n].float(), data.split("val")[:n].float()
    lp_kwargs: dict = {}
    if hasattr(model, "importance_log_prob"):
        lp_kwargs = {"k": vae_k, "generator": torch.Generator().manual_seed(seed)}
    common = {"background": background, "image_shape": data.image_shape, "log_prob_kwargs": lp_kwargs}
    t0 = time.time()
    reference = float(-log_likelihood(model, x_ref, desc="log p(reference)", **lp_kwargs).mean())
    scores_in = score_inputs(model, x_in, reference_nll_mean=reference, name=data_name, **common)
    in_seconds = time.time() - t0
    name = model_name(model_dir)
    entries = []
    for ood_name in ood_names:
        ood = load_dataset(ood_name)
        check_data_fits(model, ood, ood_name)
        x_ood = ood.split("test")[:n].float()
        t = time.time()
        scores_ood = score_inputs(model, x_ood, reference_nll_mean=reference, name=ood_name, **common)
        seconds = in_seconds + time.time() - t
        entries.append(
            report(
                name,
                data,
                ood,
                (x_in, x_ood),
                (scores_in, scores_ood),
                reference,
                seed,
                figures,
                model_dir=model_dir,
                model_class=model.registry_name,
                background_dir=background_dir,
                log_prob={"k": vae_k, "seed": seed} if lp_kwargs else "exact",
                n_reference=len(x_ref),
                seconds=round(seconds, 1),
            )
        )
    return entries


def run_independent(
    data_name: str, ood_names: list[str], n: int, mu: float, seed: int, figures: Path | None
) -> list[dict]:
    """The independent-pixel model p(x) = Π_d p_d(x_d), fitted by counting (Dirichlet 1 smoothing)
    on the training split of `data_name` (a training run of seconds), and its background model
    counted on the training split perturbed once at rate `mu`: the known failure, measured now."""
    t0 = time.time()
    data = load_dataset(data_name)
    train = data.split("train").long()
    model = IndependentModel([data.num_values] * data.dim).fit(train, alpha=1.0)
    noisy = perturb(train.float(), torch.arange(len(train)), mu, data.num_values, seed, 0).long()
    background = IndependentModel([data.num_values] * data.dim).fit(noisy, alpha=1.0)

    def scores(x: torch.Tensor, reference: float, what: str) -> dict:
        codes = x.long()
        bits = code_lengths(x, data.image_shape, data.num_values, "best", progress={"desc": what})
        return scores_from_log_likelihoods(
            model.log_prob(codes),
            dim=data.dim,
            reference_nll_mean=reference,
            log_p_background=background.log_prob(codes),
            code_bits=bits,
        )

    x_in, x_ref = data.split("test")[:n].float(), data.split("val")[:n].float()
    reference = float(-model.log_prob(x_ref.long()).mean())
    scores_in = scores(x_in, reference, data_name)
    in_seconds = time.time() - t0
    entries = []
    for ood_name in ood_names:
        ood = load_dataset(ood_name)
        if ood.dim != data.dim or ood.num_values != data.num_values:
            raise ChainruleError(f"{ood_name!r} does not hold {data.dim} {data.num_values}-level values")
        x_ood = ood.split("test")[:n].float()
        t = time.time()
        scores_ood = scores(x_ood, reference, ood_name)
        entries.append(
            report(
                "independent-pixels",
                data,
                ood,
                (x_in, x_ood),
                (scores_in, scores_ood),
                reference,
                seed,
                figures,
                model_dir=None,
                model_class=f"IndependentModel fitted by counting on {data_name} train (alpha 1)",
                background_dir=None,
                background=f"IndependentModel counted on {data_name} train perturbed at rate {mu}"
                f" (seed {seed})",
                log_prob="exact",
                n_reference=len(x_ref),
                seconds=round(in_seconds + time.time() - t, 1),
            )
        )
    return entries


def model_name(model_dir: str) -> str:
    """`zoo/NAME` → NAME, a run folder's `runs/NAME/model` → NAME."""
    path = Path(model_dir.rstrip("/"))
    return path.parent.name if path.name == "model" else path.name


#: what identifies an entry of ood.json: a rerun of the same replaces it (one model's ratios against
#: different background models are different entries)
OOD_KEY = ("model", "data", "ood_data", "background_dir")


def merge(entries: list[dict], path: Path, fields: tuple[str, ...] = OOD_KEY) -> list[dict]:
    """Earlier entries of the results file at `path` whose `fields` (by default: model, data, OOD
    data) this run did not measure, then these."""
    old = json.loads(path.read_text()).get("runs", []) if path.is_file() else []

    def key(e: dict) -> tuple:
        return tuple(e.get(f) for f in fields)

    keys = {key(e) for e in entries}
    return [e for e in old if key(e) not in keys] + entries


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), help="model folders")
    p.add_argument(
        "--independent",
        action="store_true",
        help="first score an independent-pixel model counted on --data's training split",
    )
    p.add_argument("--perturb-rate", type=float, default=0.2, help="its background's rate (default 0.2)")
    p.add_argument("--background", help="background model folder (likelihood ratio) for every model")
    p.add_argument("--data", default="binarized-mnist", help="in-distribution dataset")
    p.add_argument("--ood", nargs="+", default=list(DEFAULT_OOD), help="OOD datasets")
    p.add_argument("-n", type=int, default=2000, help="test images per side (default 2000)")
    p.add_argument("--vae-k", type=int, default=100, help="importance samples of a VAE's log p(x)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figures", default="docs/tasks", help="first model's histograms ('': none)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    entries = []
    figures = Path(args.figures) if args.figures else None
    if args.independent:
        entries += run_independent(args.data, args.ood, args.n, args.perturb_rate, args.seed, figures)
    for i, model_dir in enumerate(args.models):
        figures = Path(args.figures) if args.figures and i == 0 and not args.independent else None
        entries += run_model(
            model_dir, args.data, args.ood, args.n, args.background, args.vae_k, args.seed, figures
        )
    command = "python -m benchmarks.ood " + " ".join(argv if argv is not None else sys.argv[1:])
    runs = merge(entries, RESULTS / "ood.json")
    path = write_result("ood", {"what": WHAT, "last_command": command.strip(), "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
