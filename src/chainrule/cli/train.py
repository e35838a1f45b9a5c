"""`chainrule train RECIPE [section.key=value ...]`: train a model from a recipe YAML."""

from __future__ import annotations

from pathlib import Path

from chainrule.cli.common import CommandParser


def add_parser(sub) -> CommandParser:
    t = sub.add_parser(
        "train",
        help="train a model from a recipe YAML",
        description="Train by maximum likelihood. Overrides look like train.lr=3e-4 or model.hidden=1000"
        " and may come anywhere after the recipe, before or after the options. At the end the model"
        " is evaluated on the test split and OUT/model/metrics.json written.",
    )
    t.add_argument("recipe", help="recipe YAML (see recipes/)")
    t.add_argument("overrides", nargs="*", default=[], help="section.key=value overrides")
    t.add_argument("--out", help="output folder (default: the recipe's `out`, else runs/<recipe>)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
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


def _evaluation_device(accelerator: str) -> str:
    """Where `chainrule train` computes the test NLL: "cuda" when training used a GPU (accelerator
    gpu/cuda, or auto with CUDA available), else "cpu"."""
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if on_gpu else "cpu"


def cmd_train(args) -> dict | None:
    from chainrule.data import SequenceDataset
    from chainrule.evaluate import evaluate_nll, evaluate_sequence, split_condition
    from chainrule.persistence import atomic_write_json
    from chainrule.recipes import build_from_recipe, load_recipe
    from chainrule.training import fit

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
    model, dataset, config = build_from_recipe(recipe)
    extra = {"recipe": recipe}
    if getattr(dataset, "sample_rate", None):
        extra["sample_rate"] = dataset.sample_rate
    result = fit(model, dataset, config, out, resume=args.resume, extra_metadata=extra)
    if not result.is_main:
        return None  # another process of a distributed run: rank 0 reports
    # TODO(i19): call chainrule.evaluate / fit(test=True): the block below (test evaluation and
    # metrics.json) moves into the library; the lead swaps it in at merge time.
    metrics = {
        "model": model.registry_name,
        "dataset": dataset.name,
        "best_val_nll": result.best_val_nll,
        "epochs": result.epochs,
        "train_seconds": round(result.train_seconds, 1),
        "num_parameters": model.num_parameters(),
    }
    # Lightning hands the model back on the CPU; test it where it trained (minutes saved on a GPU)
    model.to(_evaluation_device(config.accelerator))
    try:
        if not args.no_test and isinstance(dataset, SequenceDataset):
            metrics["test"] = evaluate_sequence(model, dataset.test, unit=dataset.unit).as_dict()
        elif not args.no_test:
            kwargs = recipe.get("evaluate") or {}
            for name, kw in ({"test": {}} | kwargs).items():
                rep = evaluate_nll(model, dataset.test, cond=split_condition(model, dataset, "test"), **kw)
                metrics[name] = rep.as_dict()
    finally:
        model.cpu()
    atomic_write_json(out / "model" / "metrics.json", metrics)
    return metrics
