"""`chainrule complete MODEL_DIR --data NAME`: inpaint (or, with --superres, super-resolve; with
--colourise, colourise) test images and write a picture; the work is `chainrule.tasks.complete` /
`chainrule.tasks.superres` / `chainrule.tasks.colourise`."""

from __future__ import annotations

from chainrule.cli.common import SPLITS, CommandParser, ExamplesFormatter, at_least, image_split, seed_value
from chainrule.errors import ChainruleError

DESCRIPTION = (
    "Complete images from a model's conditionals. Each row of the picture shows an"
    " original image, the masked input (missing pixels grey) and --samples completions. Masks:"
    " bottom-half, top-half, left-half, right-half, random:P (each pixel missing with"
    " probability P), or PATH.png (white = missing). Prints log p(missing | observed) per image"
    " when it is exact (a raster model with the bottom missing). With --superres and a"
    " super-resolution model (GatedPixelCNN with lowres_factor f), each row shows the original,"
    " its low-resolution version (1/f of the size, drawn blocky at full size) and --samples"
    " high-resolution draws given it; prints the exact conditional NLL log p(x | low-res x) in"
    " nats and bits/dim. With --colourise and a colourisation model (GatedPixelCNN with grey_levels),"
    " each row shows the greyscale version of a test image, --samples colour draws given it and the"
    " true colour image; prints the exact conditional NLL log p(x | greyscale x)."
)
EXAMPLES = (
    "examples:\n"
    "  chainrule complete zoo/gated-pixelcnn-mnist --data binarized-mnist --mask bottom-half\n"
    "  chainrule complete runs/gated-pixelcnn-mnist-superres/model --data binarized-mnist --superres"
    " -n 8 --samples 4 --out superres.png\n"
    "  chainrule complete zoo/gated-pixelcnn-colour-mnist-colourise --data colour-mnist-2 --colourise"
    " -n 6 --samples 5 --out colours.png"
)


def add_parser(sub) -> CommandParser:
    c = sub.add_parser(
        "complete",
        help="inpaint, super-resolve or colourise test images; write a picture",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=ExamplesFormatter,
    )
    c.add_argument("model_dir")
    c.add_argument("--data", required=True, help="dataset whose images to complete")
    c.add_argument("--split", default="test", choices=SPLITS)
    c.add_argument("--mask", default=None, help="which pixels are missing (default bottom-half)")
    c.add_argument(
        "--superres",
        action="store_true",
        help="super-resolution instead of a mask: sample images given their low-resolution versions"
        " (needs a model built with lowres_factor)",
    )
    c.add_argument(
        "--colourise",
        action="store_true",
        help="colourisation instead of a mask: sample colour images given their greyscale versions"
        " (needs a model built with grey_levels)",
    )
    c.add_argument("-n", type=int, default=8, help="number of images (default 8)")
    c.add_argument("--samples", type=int, default=3, help="completions per image (default 3)")
    c.add_argument("--seed", type=seed_value, default=0)
    c.add_argument("--out", default="completions.png", help="PNG path (default completions.png)")
    c.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    c.set_defaults(handler=cmd_complete)
    return c


def cmd_complete(args) -> dict:
    """Inpaint test images; picture of original | masked | completions; exact conditional NLL.
    With --superres: original | low-res | samples, and the NLL of p(x | low-res x)."""
    import torch

    from chainrule.cli.outputs import check_output
    from chainrule.persistence import load
    from chainrule.report import completion_grid
    from chainrule.tasks.complete import completion_report, mask_for_model

    model = load(args.model_dir)
    if args.superres and args.colourise:
        raise ChainruleError("--superres and --colourise exclude each other: choose one task")
    if args.superres:
        return _superres(model, args)
    if args.colourise:
        return _colourise(model, args)
    if model.conditioned_on == "image":
        task = ("colourisation", "greyscale", "--colourise")
        if model.config().get("lowres_factor"):
            task = ("super-resolution", "low-resolution", "--superres")
        raise ChainruleError(
            f"{args.model_dir} is a {task[0]} model (conditioned on a {task[1]} image):"
            f" use {task[2]} instead of a mask"
        )
    if model.class_conditional:
        raise ChainruleError("completion of class-conditional models is not supported from the CLI yet")
    data, x = image_split(model, args.data, args.split, args.n)
    args.mask = args.mask or "bottom-half"
    g = torch.Generator().manual_seed(args.seed)
    observed = mask_for_model(args.mask, model, g)
    # before the work: never inside a model folder, an existing file only with --force
    check_output(args.out, args.force, args.model_dir)
    filled, stats = completion_report(model, x, observed, args.samples, g)
    completion_grid(x, observed, filled, data.image_shape, args.out, num_values=model.num_values)
    head = {"out": args.out, "n": len(x), "samples": args.samples, "mask": args.mask}
    return {**head, **stats}


def _superres(model, args) -> dict:
    """`chainrule complete --superres`: original | low-res | samples; exact log p(x | low-res x)."""
    import torch

    from chainrule.cli.outputs import check_output
    from chainrule.report import superres_grid
    from chainrule.tasks.superres import superres_report

    if args.mask is not None:
        raise ChainruleError("--superres and --mask exclude each other: super-resolution needs no mask")
    if model.conditioned_on != "image" or not model.config().get("lowres_factor"):
        raise ChainruleError(
            f"--superres needs a super-resolution model (GatedPixelCNN built with lowres_factor);"
            f" {args.model_dir} ({model.registry_name}) has no lowres_factor"
        )
    data, x = image_split(model, args.data, args.split, args.n)
    at_least(args.samples, 1, "--samples")
    check_output(args.out, args.force, args.model_dir)
    g = torch.Generator().manual_seed(args.seed)
    draws, low, stats = superres_report(model, x, args.samples, g)
    factor = stats["superres_factor"]
    superres_grid(x, low, draws, data.image_shape, args.out, num_values=model.num_values, factor=factor)
    return {"out": args.out, "n": len(x), "samples": args.samples, **stats}


def _colourise(model, args) -> dict:
    """`chainrule complete --colourise`: greyscale | colour draws | true colour; exact log p(x | grey x)."""
    import torch

    from chainrule.cli.outputs import check_output
    from chainrule.report import colourisation_grid
    from chainrule.tasks.colourise import colourise_report, grey_levels

    if args.mask is not None:
        raise ChainruleError("--colourise and --mask exclude each other: colourisation needs no mask")
    levels = grey_levels(model)
    data, x = image_split(model, args.data, args.split, args.n)
    at_least(args.samples, 1, "--samples")
    check_output(args.out, args.force, args.model_dir)
    g = torch.Generator().manual_seed(args.seed)
    draws, grey, stats = colourise_report(model, x, args.samples, g)
    colourisation_grid(
        grey, draws, x, data.image_shape, args.out, num_values=model.num_values, grey_levels=levels
    )
    return {"out": args.out, "n": len(x), "samples": args.samples, **stats}
