"""`chainrule train RECIPE [section.key=value ...]`: train a model from a recipe YAML."""

from __future__ import annotations

from pathlib import Path

from chainrule.cli.common import CommandParser, ExamplesFormatter

EXAMPLES = (
    "examples:\n"
    "  chainrule train recipes/nade-mnist.yaml train.lr=3e-4 --out runs/nade\n"
    "  chainrule train recipes/nade-mnist.yaml train.optimizer=sgd train.lr=0.05 train.momentum=0.9"
    " train.nesterov=true\n"
    "optimizer keys:\n"
    "  train.optimizer  adam (default) or sgd (stochastic gradient descent with momentum)\n"
    "  train.momentum   sgd only: momentum in [0, 1), default 0.9 (0: plain SGD)\n"
    "  train.nesterov   sgd only: Nesterov's momentum (true/false, needs momentum > 0)\n"
    "  train.weight_decay, train.lr, train.lr_schedule: both optimizers\n"
    "every train key: docs/reference/training.md (the fields of chainrule.TrainConfig)"
)


def add_parser(sub) -> CommandParser:
    t = sub.add_parser(
        "train",
        help="train a model from a recipe YAML",
        description="Train by maximum likelihood. Overrides look like train.lr=3e-4 or model.hidden=1000"
        " and may come anywhere after the recipe, before or after the options. At the end the model"
        " is evaluated on the test split and OUT/model/metrics.json written.",
        epilog=EXAMPLES,
        formatter_class=ExamplesFormatter,
    )
    t.add_argument("recipe", help="recipe YAML (see recipes/)")
    t.add_argument("overrides", nargs="*", default=[], help="section.key=value overrides")
    t.add_argument("--out", help="output folder (default: the recipe's `out`, else runs/<recipe>)")
    t.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt (same recipe and data)"
    )
    t.add_argument("--force", action="store_true", help="replace the run already in OUT (deletes it)")
    t.add_argument("--no-test", action="store_true", help="skip the test-set evaluation at the end")
    t.add_argument(
        "--data", help="dataset instead of the recipe's: a name, csv:PATH, mmap:PATH, text:PATH or wav:PATH"
    )
    t.add_argument("--devices", type=int, help="processes (CPU) or GPUs per node (train.devices)")
    t.add_argument("--num-nodes", type=int, help="machines (train.num_nodes); see docs/distributed.md")
    t.add_argument("--accelerator", choices=["cpu", "gpu", "auto"], help="train.accelerator")
    t.add_argument("--strategy", choices=["auto", "ddp", "ddp_spawn", "ddp_fork"], help="train.strategy")
    t.add_argument("--compile", action="store_true", help="torch.compile the training step (train.compile)")
    t.set_defaults(handler=cmd_train)
    return t


def cmd_train(args) -> dict | None:
    from chainrule.recipes import build_from_recipe, load_recipe
    from chainrule.training import TrainConfig, fit
    from chainrule.training.config import check_accelerator
    from chainrule.training.run_folder import claim_run_folder

    flags = {
        "data.name": args.data,
        "train.devices": args.devices,
        "train.num_nodes": args.num_nodes,
        "train.accelerator": args.accelerator,
        "train.strategy": args.strategy,
        "train.compile": True if args.compile else None,
    }
    overrides = [*args.overrides, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    recipe = load_recipe(args.recipe, overrides)
    out = Path(args.out or recipe.get("out") or f"runs/{Path(args.recipe).stem}")
    train = TrainConfig(**(recipe.get("train") or {})).check()
    check_accelerator(train.accelerator, train.devices)
    # the folder is claimed (locked, checked) before the data are loaded or anything trains
    with claim_run_folder(out, resume=args.resume, force=args.force, devices=train.devices):
        model, dataset, config = build_from_recipe(recipe)
        extra = {"recipe": recipe}
        if getattr(dataset, "sample_rate", None):
            extra["sample_rate"] = dataset.sample_rate
        result = fit(
            model,
            dataset,
            config,
            out,
            resume=args.resume,
            extra_metadata=extra,
            test=not args.no_test,
            test_runs=recipe.get("evaluate"),
        )
    return result.metrics if result.is_main else None  # rank 0 of a distributed run reports
