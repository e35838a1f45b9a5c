"""`chainrule defend MODEL_DIR --classifier DIR --data NAME`: PixelDefend (attack a classifier,
detect the attacks by likelihood rank, purify by greedy decoding); the work is `chainrule.tasks.defend`."""

from __future__ import annotations

import sys

from chainrule.cli.common import SPLITS, CommandParser, ExamplesFormatter, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    de = sub.add_parser(
        "defend",
        help="PixelDefend: attack a classifier (FGSM, PGD), detect by likelihood rank, purify",
        description="Attack --classifier on the first -n images of --data's split with FGSM and/or PGD"
        " (L-infinity, eps on the [0, 1] pixel scale, results rounded to the 256 levels); detect the"
        " attacks by the p-value of each image's likelihood rank among --reference training images"
        " (Song et al. 2018); purify clean and attacked images by greedy decoding with MODEL_DIR (an"
        " autoregressive model of the same 8-bit images) inside a --defend-eps ball. Prints the table"
        " (accuracy clean / attacked / purified, detection AUROC) to stderr and as JSON to stdout, and"
        " writes a picture of clean, attacked and purified examples with the classifier's labels.",
        epilog="example:\n  chainrule defend runs/gated-pixelcnn-fashion/model --classifier runs/cnn-fashion"
        " \\\n      --data fashion-mnist --attack both --eps 8/255,16/255 --defend-eps 16/255 -n 200",
        formatter_class=ExamplesFormatter,
    )
    de.add_argument("model_dir", help="autoregressive density model of the images (the purifier)")
    de.add_argument("--classifier", required=True, help="classifier folder (chainrule classifier train)")
    de.add_argument("--data", required=True, help="labelled 8-bit image dataset, e.g. fashion-mnist")
    de.add_argument("--split", default="test", choices=SPLITS, help="(default test)")
    de.add_argument("--attack", default="both", choices=["fgsm", "pgd", "both"], help="(default both)")
    de.add_argument(
        "--eps", default="8/255,16/255", help="attack eps list, fractions allowed (default 8/255,16/255)"
    )
    de.add_argument("--defend-eps", default="16/255", help="purification eps_def (default 16/255)")
    de.add_argument("-n", type=int, default=200, help="number of images (default 200)")
    de.add_argument(
        "--reference", type=int, default=2000, help="training images the p-values rank against (default 2000)"
    )
    de.add_argument("--pgd-steps", type=int, default=10, help="PGD iterations (default 10)")
    de.add_argument(
        "--pgd-step-size", default=None, help="PGD step on the [0, 1] scale (default 2.5 eps / steps)"
    )
    de.add_argument("--batch-size", type=int, default=100)
    de.add_argument("--show", type=int, default=6, help="examples in the picture (default 6)")
    de.add_argument("--seed", type=seed_value, default=0, help="PGD random start")
    de.add_argument("--out", default="defend.png", help="PNG path (default defend.png)")
    de.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    de.set_defaults(handler=cmd_defend)
    return de


def cmd_defend(args) -> dict:
    """PixelDefend experiment: table to stderr, JSON to stdout, picture of examples."""
    from chainrule.cli.outputs import check_output
    from chainrule.report import defend_grid
    from chainrule.tasks.attacks import parse_epsilon
    from chainrule.tasks.defend import class_names, defend_report, format_defend_table, load_defence

    eps = [parse_epsilon(t, "--eps") for t in args.eps.split(",")]
    defend_eps = parse_epsilon(args.defend_eps, "--defend-eps")
    step = None if args.pgd_step_size is None else parse_epsilon(args.pgd_step_size, "--pgd-step-size")
    for flag, value in (("-n", args.n), ("--reference", args.reference), ("--batch-size", args.batch_size)):
        if value < 1:
            raise ChainruleError(f"{flag} must be at least 1, got {value}")
    if args.show < 0:
        raise ChainruleError(f"--show must be >= 0, got {args.show}")
    model, classifier, data = load_defence(args.model_dir, args.classifier, args.data)
    # before the work: never inside a model folder, an existing file only with --force
    check_output(args.out, args.force, args.model_dir)
    x = data.split(args.split)[: args.n]
    y = data.labels[args.split][: args.n]
    result = defend_report(
        model,
        classifier,
        x,
        y,
        data.split("train")[: args.reference],
        attacks=["fgsm", "pgd"] if args.attack == "both" else [args.attack],
        eps=eps,
        defend_eps=defend_eps,
        pgd_steps=args.pgd_steps,
        pgd_step_size=step,
        seed=args.seed,
        batch_size=args.batch_size,
        show=min(args.show, len(x)),
    )
    print(format_defend_table(result.table), file=sys.stderr)
    if args.show:
        defend_grid(
            args.out,
            result.images,
            result.predictions,
            result.labels,
            tuple(data.image_shape),
            num_values=data.num_values,
            class_names=class_names(args.data),
            title=f"classifier labels (green right, red wrong); purification eps_def = {args.defend_eps}",
        )
    picture = {"out": args.out} if args.show else {}
    return {
        "model_dir": args.model_dir,
        "classifier": args.classifier,
        "data": args.data,
        **picture,
        **result.table,
    }
