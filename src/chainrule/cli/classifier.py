"""`chainrule classifier train|eval`: CNN image classifiers, and class-conditional density models
used as classifiers by Bayes rule."""

from __future__ import annotations

import json
import time
from pathlib import Path

from chainrule.cli.common import SPLITS, CommandParser, ExamplesFormatter, parse_int_list, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    cl = sub.add_parser(
        "classifier",
        help="image classifiers: train a CNN; eval a CNN or a class-conditional model (Bayes rule)",
        description="A small convolutional classifier of labelled image datasets (the classifier that"
        " `chainrule defend` attacks and protects). `train` fits it with Adam on cross-entropy under"
        " Lightning (progress bar, seeded, early stopping on validation accuracy) and writes"
        " OUT/model.safetensors + OUT/config.json (with the test accuracy) and OUT/logs; `eval` prints"
        " the accuracy of a saved classifier on a split. `eval` also takes a saved class-conditional"
        " chainrule model (e.g. GatedPixelCNN with num_classes): a generative classifier, p(y | x)"
        " proportional to p(x | y) p(y) with the prior p(y) counted from the training split's labels;"
        " it prints the accuracy, the mean NLL -log p(x | true class), the marginal NLL and the prior"
        " (K likelihood passes over the split: a progress bar shows them).",
        epilog="examples:\n  chainrule classifier train --data fashion-mnist --out runs/cnn-fashion\n"
        "  chainrule classifier eval runs/cnn-fashion --data fashion-mnist --split test\n"
        "  chainrule classifier eval runs/gated-pixelcnn-mnist-classes/model --data binarized-mnist -n 1000",
        formatter_class=ExamplesFormatter,
    )
    csub = cl.add_subparsers(dest="classifier_command", metavar="ACTION")
    ct = csub.add_parser("train", help="train a CNN classifier on a labelled image dataset")
    ct.add_argument("--data", required=True, help="labelled image dataset, e.g. fashion-mnist or digits")
    ct.add_argument("--out", required=True, help="new folder for the classifier (e.g. runs/cnn-fashion)")
    ct.add_argument("--epochs", type=int, default=10, help="most epochs (default 10)")
    ct.add_argument("--patience", type=int, default=2, help="epochs without better val accuracy (default 2)")
    ct.add_argument("--batch-size", type=int, default=128)
    ct.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    ct.add_argument(
        "--channels", default="32,64", help="conv channels: one 3x3 conv + 2x2 max-pool each (default 32,64)"
    )
    ct.add_argument("--hidden", type=int, default=128, help="hidden units before the output (default 128)")
    ct.add_argument("--dropout", type=float, default=0.25)
    ct.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    ct.add_argument("--seed", type=seed_value, default=0)
    ce = csub.add_parser(
        "eval", help="accuracy of a saved CNN classifier or class-conditional model on a dataset split"
    )
    ce.add_argument("classifier_dir", help="a `classifier train` folder or a class-conditional model folder")
    ce.add_argument("--data", required=True)
    ce.add_argument("--split", default="test", choices=SPLITS)
    ce.add_argument("-n", type=int, default=None, help="use the first N images of the split (default all)")
    ce.add_argument(
        "--batch-size", type=int, default=500, help="class-conditional models: images per pass (default 500)"
    )
    cl.set_defaults(handler=cmd_classifier)
    return cl


def _labelled_images(name: str):
    """A named image dataset with labels, or a clear error."""
    from chainrule.data import load_dataset

    data = load_dataset(name)
    if not data.image_shape:  # token streams declare none
        raise ChainruleError(f"dataset {name!r} holds no images")
    if not data.labels:
        raise ChainruleError(f"dataset {name!r} has no class labels")
    return data


def cmd_classifier(args) -> dict:
    """Train a CNN classifier, or evaluate a CNN or a class-conditional density model (Bayes rule)."""
    from chainrule.classifiers import ClassifierTrainConfig, load_classifier
    from chainrule.classifiers.cnn import train_cnn_on

    if not args.classifier_command:
        raise ChainruleError(
            "`chainrule classifier` needs an action: train or eval (chainrule classifier -h)"
        )
    data = _labelled_images(args.data)
    if args.classifier_command == "train":
        config = ClassifierTrainConfig(
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            lr=args.lr,
            patience=args.patience,
            seed=args.seed,
            max_minutes=args.max_minutes,
        )
        arch = {"channels": parse_int_list(args.channels, "--channels"), "hidden": args.hidden}
        _, metrics = train_cnn_on(data, args.out, config, dropout=args.dropout, seed=args.seed, **arch)
        return {"out": args.out, **metrics}
    if args.n is not None and args.n < 1:
        raise ChainruleError(f"-n must be at least 1, got {args.n}")
    if _holds_density_model(args.classifier_dir):
        return _eval_generative_classifier(args, data)
    clf = load_classifier(args.classifier_dir)
    if tuple(clf.image_shape) != tuple(data.image_shape) or clf.num_values != data.num_values:
        raise ChainruleError(
            f"{args.classifier_dir} classifies {tuple(clf.image_shape)} images of {clf.num_values} levels;"
            f" dataset {args.data!r} has {tuple(data.image_shape)} images of {data.num_values} levels"
        )
    x = data.split(args.split)[: args.n]
    return {
        "classifier_dir": args.classifier_dir,
        "kind": "cnn",
        "data": args.data,
        "split": args.split,
        "accuracy": clf.score(x, data.labels[args.split][: args.n]),
        "examples": len(x),
    }


def _holds_density_model(directory: str) -> bool:
    """Whether a folder's config.json names a density model rather than a classifier."""
    from chainrule.persistence import CONFIG, saved_kind

    try:
        config = json.loads((Path(directory) / CONFIG).read_text())
    except (OSError, ValueError):
        return False  # the classifier loader says what is wrong
    return saved_kind(config) == "model"


def _eval_generative_classifier(args, data) -> dict:
    """`classifier eval` of a class-conditional density model: Bayes rule with the training prior."""
    from chainrule.persistence import load
    from chainrule.tasks.classify import check_fits_data, evaluate_generative_classifier

    model = load(args.classifier_dir)
    try:
        check_fits_data(model, data, args.classifier_dir)
    except ChainruleError as e:
        if model.class_conditional:
            raise
        raise ChainruleError(f"{e}, or give a `chainrule classifier train` folder") from None
    if args.batch_size < 1:
        raise ChainruleError(f"--batch-size must be at least 1, got {args.batch_size}")
    x = data.split(args.split)[: args.n]
    t = time.time()
    report = evaluate_generative_classifier(
        model, x, data.labels[args.split][: args.n], data.labels["train"], batch_size=args.batch_size
    )
    return {
        "classifier_dir": args.classifier_dir,
        "kind": "generative",
        "model": model.registry_name,
        "data": args.data,
        "split": args.split,
        **report.as_dict(),
        "prior_from": f"label frequencies of the {len(data.labels['train'])} training images",
        "seconds": round(time.time() - t, 2),
    }
