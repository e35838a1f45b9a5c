"""`chainrule score MODEL_DIR --data IN --ood-data OOD`: out-of-distribution detection, a table and
histograms; the experiment is `chainrule.tasks.score.score_datasets`."""

from __future__ import annotations

import sys
import time

from chainrule.cli.common import SPLITS, CommandParser, latent_kwargs, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    sc = sub.add_parser(
        "score",
        help="out-of-distribution detection: score in-distribution vs OOD data; table and histograms",
        description="Score the test images of --data (in-distribution) and of --ood-data with every OOD"
        " score (higher = more anomalous): negative log-likelihood, bits/dim, likelihood ratio against"
        " --background (a small local model of the same data, e.g."
        " zoo/gated-pixelcnn-fashion-local-background, or one trained with train.perturb_rate),"
        " input complexity (NLL in bits minus"
        " a lossless compressor's bits) and typicality (|NLL - mean NLL of --data's validation"
        " split|, its training split when --split val). Prints a table of AUROC, AUPR and FPR at"
        " 95 % TPR (OOD = positive) to stderr, one JSON line to stdout, and writes a PNG of the"
        " score histograms.",
    )
    sc.add_argument("model_dir")
    sc.add_argument("--data", required=True, help="the model's own (in-distribution) dataset")
    sc.add_argument("--ood-data", required=True, help="the out-of-distribution dataset")
    sc.add_argument(
        "--background",
        help="background model folder, for the likelihood-ratio score (same data kind as the model)",
    )
    sc.add_argument("--split", default="test", choices=SPLITS, help="(default test)")
    sc.add_argument("-n", type=int, default=None, help="use the first N images of each split (default all)")
    sc.add_argument("--out", default="ood-scores.png", help="histogram PNG path (default ood-scores.png)")
    sc.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    sc.add_argument(
        "--compressor",
        default="best",
        choices=["best", "png", "zlib", "bz2", "lzma"],
        help="lossless compressor of the input-complexity score (default best: the shortest per image)",
    )
    sc.add_argument("--batch-size", type=int, default=500)
    sc.add_argument("--k", type=int, default=None, help="VAE: importance samples per example (default 1000)")
    sc.add_argument("--seed", type=seed_value, default=0, help="VAE: seed of the importance samples")
    sc.set_defaults(handler=cmd_score)
    return sc


def cmd_score(args) -> dict:
    """In-distribution vs OOD scores: table on stderr, histograms PNG, metrics as JSON."""
    from chainrule.cli.outputs import check_output
    from chainrule.data import load_dataset
    from chainrule.persistence import load
    from chainrule.report import score_histograms
    from chainrule.tasks.anomaly import format_table
    from chainrule.tasks.score import check_scorable, score_datasets

    model = load(args.model_dir)
    check_scorable(model)  # before loading any data: sequence and class-conditional models are refused
    if args.n is not None and args.n < 2:
        raise ChainruleError(f"-n must be at least 2, got {args.n}")
    background = load(args.background) if args.background else None
    data, ood = load_dataset(args.data), load_dataset(args.ood_data)
    kwargs = latent_kwargs(model, args.k, args.seed)
    # before the work: never inside a model folder, an existing file only with --force
    check_output(args.out, args.force, args.model_dir)
    t = time.time()
    exp = score_datasets(
        model,
        data,
        ood,
        names=(args.data, args.ood_data),
        split=args.split,
        n=args.n,
        background=background,
        compressor=args.compressor,
        batch_size=args.batch_size,
        log_prob_kwargs=kwargs,
    )
    secs = time.time() - t
    result, summary = exp.comparison, exp.comparison.summary()
    print(
        f"{args.model_dir}: {exp.n_in} {args.data} vs {exp.n_ood} {args.ood_data} ({args.split} split);"
        " OOD = positive\n" + format_table(summary),
        file=sys.stderr,
    )
    score_histograms(
        result.scores_in,
        result.scores_ood,
        args.out,
        labels=(args.data, args.ood_data),
        aurocs={k: v["auroc"] for k, v in summary.items()},
        title=f"{model.registry_name}: {args.data} (in) vs {args.ood_data} (OOD)",
    )
    reference = {"split": exp.reference_split, "n": exp.n_reference, "nll_mean": result.reference_nll_mean}
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "ood_data": args.ood_data,
        "split": args.split,
        "n_in": exp.n_in,
        "n_ood": exp.n_ood,
        "background": args.background,
        "compressor": args.compressor,
        "typicality_reference": reference,
        "scores": summary,
        "out": args.out,
        "seconds": round(secs, 2),
    }
