"""`chainrule sample MODEL_DIR`: draw samples into a PNG grid or a CSV file."""

from __future__ import annotations

import inspect
import time

from chainrule.cli.common import CommandParser, at_least
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    s = sub.add_parser(
        "sample",
        help="draw samples from a saved model into a PNG grid or a CSV file",
        description="Draw samples. OUT ending in .csv gets one row per sample (integer codes, or"
        " real values for continuous models; with the training file's header when there is one);"
        " anything else gets a PNG grid of images.",
    )
    s.add_argument("model_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png", help="PNG or .csv path (default samples.png)")
    s.add_argument(
        "--method", default="fast", choices=["fast", "generic"], help="sampler of autoregressive models"
    )
    s.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="class-conditional models: this many samples of every class, one row per class"
        " (default 8; -n is then ignored)",
    )
    s.set_defaults(handler=cmd_sample)
    return s


def _sample_kwargs(model, args) -> tuple[dict, int | None]:
    """`sample` options: the sampler (models whose `sample` takes `method`) and, for a
    class-conditional model, the labels of --per-class rows; also the grid's columns."""
    import torch

    kwargs: dict = {}
    if "method" in inspect.signature(model.sample).parameters:
        kwargs["method"] = args.method
    if model.class_conditional:
        per_class = args.per_class or 8
        at_least(per_class, 1, "--per-class")
        kwargs["cond"] = torch.arange(model.num_classes).repeat_interleave(per_class)
        args.n = len(kwargs["cond"])
        return kwargs, per_class
    if args.per_class is not None:
        raise ChainruleError(f"--per-class needs a class-conditional model; {args.model_dir} is not one")
    return kwargs, None


def cmd_sample(args) -> dict:
    import torch

    from chainrule.data.csv_file import write_csv_codes
    from chainrule.persistence import load, read_config
    from chainrule.report import image_grid

    model = load(args.model_dir)
    at_least(args.n, 1, "-n")
    if model.conditioned_on == "prefix":
        raise ChainruleError(f"{args.model_dir} is a sequence model: use `chainrule generate`")
    to_csv = args.out.lower().endswith(".csv")
    if model.image_shape is None and not to_csv:
        raise ChainruleError("this model has no image_shape, so it cannot draw a grid; use --out FILE.csv")
    g = torch.Generator().manual_seed(args.seed)
    kwargs, ncols = _sample_kwargs(model, args)
    t = time.time()
    x = model.sample(args.n, generator=g, **kwargs)
    secs = time.time() - t
    if to_csv:
        columns = read_config(args.model_dir).get("training", {}).get("columns")
        write_csv_codes(args.out, x, columns, real=model.value_type == "continuous")
        return {"out": args.out, "n": args.n, "seconds": round(secs, 3)}
    image_grid(
        x,
        model.image_shape,
        args.out,
        num_values=model.num_values,
        ncols=ncols,
        title=f"{model.registry_name}: {args.n} samples, seed {args.seed}"
        + (", one row per class" if ncols else ""),
    )
    return {"out": args.out, "n": args.n, "seconds": round(secs, 3)}
