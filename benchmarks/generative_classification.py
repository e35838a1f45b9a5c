"""Generative vs discriminative classification of binarized MNIST (issue 8): a class-conditional
density model used through Bayes rule, p(y | x) ∝ p(x | y) p(y), against a CNN trained on
cross-entropy with about as many parameters.

    python -m benchmarks.generative_classification --model runs/gated-pixelcnn-mnist-classes/model
    python -m benchmarks.generative_classification --model MODEL_DIR -n 1000   # the first 1,000 test images
                                                  # -> benchmarks/results/generative_classification.json

The density model comes from recipes/gated-pixelcnn-mnist-classes.yaml (or any class-conditional
chainrule model of the data); the prior p(y) is the label frequencies of the training split. The
CNN (`chainrule.classifiers.CNNClassifier`, trained by `train_cnn_on` as `chainrule classifier
train` does) gets the hidden width that brings its parameter count closest to the density model's
(unless --channels/--hidden say otherwise); it is trained into --cnn, or reused from there when
that folder already holds a classifier. It trains on one fixed binarization of the training images
(`Dataset.split("train")`), while the density recipe re-binarizes every batch. Both classifiers
are scored on the same first -n images of the split.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS, write_result
from chainrule.benchmark import common
from chainrule.classifiers import ClassifierTrainConfig, CNNClassifier, load_classifier, log_loss
from chainrule.classifiers.cnn import train_cnn_on
from chainrule.cli import parse_int_list
from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.persistence import CONFIG, load, read_config
from chainrule.tasks.classify import check_fits_data, evaluate_generative_classifier

#: Convolution plans tried for the matched CNN, widest first (one 3x3 conv + 2x2 max-pool each).
CHANNEL_PLANS = ([32, 64], [16, 32], [8, 16], [4, 8])


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def cnn_parameters(image_shape, num_values: int, num_classes: int, channels: list[int], hidden: int) -> int:
    return CNNClassifier(list(image_shape), num_values, num_classes, channels, hidden).num_parameters()


def matched_cnn(image_shape, num_values: int, num_classes: int, target: int) -> dict[str, Any]:
    """CNN options (channels, hidden) whose parameter count is closest to `target`: for each plan in
    CHANNEL_PLANS the hidden width that fits (the count is linear in it), the widest plan that
    lands within 10 % with at least 16 hidden units, else the closest of all."""
    best, best_gap = None, math.inf
    for channels in CHANNEL_PLANS:
        at1 = cnn_parameters(image_shape, num_values, num_classes, channels, 1)
        per_unit = cnn_parameters(image_shape, num_values, num_classes, channels, 2) - at1
        hidden = max(4, round((target - at1) / per_unit) + 1)
        params = at1 + (hidden - 1) * per_unit
        gap = abs(math.log(params / target))
        if gap <= math.log(1.1) and hidden >= 16:
            return {"channels": channels, "hidden": hidden, "num_parameters": params}
        if gap < best_gap:
            best, best_gap = {"channels": channels, "hidden": hidden, "num_parameters": params}, gap
    return best


def model_summary(model_dir: str, model) -> dict[str, Any]:
    """The density model: class, options, parameter count and training record."""
    config = read_config(model_dir)
    training = config.get("training", {})
    keep = ("dataset", "epochs", "train_seconds", "best_val_nll")
    summary = {"dir": str(model_dir), "model": config["model"], "args": config["args"]}
    summary.update({k: training[k] for k in keep if k in training})
    summary["num_parameters"] = count_parameters(model)
    return summary


def cnn_classifier(args, data, target_params: int) -> tuple[CNNClassifier, dict[str, Any]]:
    """The discriminative classifier: reused from --cnn when it holds one, else trained there."""
    folder = Path(args.cnn or f"runs/cnn-{args.data}-matched")
    if (folder / CONFIG).is_file():
        clf = load_classifier(folder)
        print(f"reusing the classifier in {folder}", file=sys.stderr)
        return clf, {"dir": str(folder), "trained_now": False}
    k = int(max(int(v.max()) for v in data.labels.values())) + 1
    arch = matched_cnn(data.image_shape, data.num_values, k, target_params)
    if args.channels:
        arch["channels"] = args.channels
    if args.hidden:
        arch["hidden"] = args.hidden
    config = ClassifierTrainConfig(
        max_epochs=args.epochs, patience=args.patience, seed=args.seed, max_minutes=args.max_minutes
    )
    clf, _ = train_cnn_on(
        data, folder, config, channels=arch["channels"], hidden=arch["hidden"], seed=args.seed
    )
    return clf, {"dir": str(folder), "trained_now": True}


def format_table(result: dict[str, Any]) -> str:
    """The comparison as a markdown table (docs and stdout)."""
    g, d = result["generative"], result["discriminative"]
    nll = f"{g['nll_true_class_nats']:.2f} ± {g['nll_true_class_stderr']:.2f}"
    rows = [
        "| classifier | parameters | accuracy | log loss (nats) | -log p(x \\| y) (nats) |",
        "|---|---:|---:|---:|---:|",
        f"| generative: {g['model']} + Bayes rule | {g['num_parameters']:,} | {100 * g['accuracy']:.2f} %"
        f" | {g['log_loss']:.4f} | {nll} |",
        f"| discriminative: CNN {d['channels']} + {d['hidden']} hidden | {d['num_parameters']:,}"
        f" | {100 * d['accuracy']:.2f} % | {d['log_loss']:.4f} | — |",
    ]
    head = (
        f"{result['data']} {result['split']} split, first {result['n']:,} images;"
        f" parameter ratio CNN / generative = {result['parameter_ratio']:.2f}"
    )
    return head + "\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="class-conditional density model folder")
    p.add_argument("--data", default="binarized-mnist")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("-n", type=int, default=None, help="use the first N images of the split (default all)")
    p.add_argument("--batch-size", type=int, default=500, help="images per density pass (default 500)")
    p.add_argument("--cnn", help="classifier folder: reused if it holds one, else trained there"
                   " (default runs/cnn-DATA-matched)")  # fmt: skip
    p.add_argument("--channels", help="CNN conv channels, e.g. 32,64 (default: matched to the model)")
    p.add_argument("--hidden", type=int, help="CNN hidden units (default: matched to the model)")
    p.add_argument("--epochs", type=int, default=10, help="CNN: most epochs (default 10)")
    p.add_argument("--patience", type=int, default=2, help="CNN: early-stopping patience (default 2)")
    p.add_argument("--max-minutes", type=float, default=None, help="CNN: wall-clock budget")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="generative_classification", help="result name: RESULTS/NAME.json")
    p.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n is not None and args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    if args.channels:  # checked before the long likelihood passes, not after them
        args.channels = parse_int_list(args.channels, "--channels")
    model = load(args.model)
    data = load_dataset(args.data)
    check_fits_data(model, data, args.model)
    x, y = data.split(args.split)[: args.n], data.labels[args.split][: args.n]

    start = time.perf_counter()
    report = evaluate_generative_classifier(model, x, y, data.labels["train"], batch_size=args.batch_size)
    generative_seconds = time.perf_counter() - start
    generative = {
        **model_summary(args.model, model),
        **report.as_dict(),
        "seconds": round(generative_seconds, 1),
    }

    clf, where = cnn_classifier(args, data, generative["num_parameters"])
    start = time.perf_counter()
    log_proba = clf.predict_log_proba(x)
    info = clf.training_info
    discriminative = {
        **where,
        "channels": clf.config()["channels"],
        "hidden": clf.config()["hidden"],
        "num_parameters": clf.num_parameters(),
        "accuracy": float((log_proba.argmax(1) == y).double().mean()),
        "log_loss": log_loss(log_proba, y),
        "seconds": round(time.perf_counter() - start, 1),
        **{k: info[k] for k in ("epochs", "train_seconds", "best_val_acc", "test_accuracy") if k in info},
    }
    payload = {
        "benchmark": "generative_classification",
        "data": args.data,
        "split": args.split,
        "n": len(x),
        "prior": "label frequencies of the training split",
        "generative": generative,
        "discriminative": discriminative,
        "parameter_ratio": discriminative["num_parameters"] / generative["num_parameters"],
        "note": "the CNN trains on one fixed binarization of the training images; the density model's"
        " recipe re-binarizes every batch",
    }
    payload["table"] = format_table(payload)  # markdown, shown as is by docs/tasks/classification.md
    if Path(args.results) == RESULTS:
        path = write_result(args.name, payload)
    else:  # elsewhere (a smoke run): the same writer, another folder
        path = common.write_result(args.name, payload, args.results)
    print(payload["table"])
    print(f"wrote {path}", file=sys.stderr)
    return payload


if __name__ == "__main__":
    try:
        main()
    except ChainruleError as e:
        sys.exit(f"error: {e}")
