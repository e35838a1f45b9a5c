"""`chainrule demo`: train a small NADE on the embedded 8x8 digits and write samples."""

from __future__ import annotations

from pathlib import Path

from chainrule.cli.common import CommandParser
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    d = sub.add_parser("demo", help="train a small NADE on the embedded 8x8 digits; write samples")
    d.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    d.add_argument("--epochs", type=int, default=60)
    d.add_argument("--force", action="store_true", help="replace the demo run already in OUT (deletes it)")
    d.set_defaults(handler=cmd_demo)
    return d


def cmd_demo(args) -> dict:
    from chainrule.training.run_folder import claim_run_folder

    out = Path(args.out)
    if args.epochs < 1:
        raise ChainruleError(f"--epochs must be at least 1, got {args.epochs}")
    with claim_run_folder(out, force=args.force):  # an existing run is never overwritten silently
        return run_demo(out, args.epochs)


def run_demo(out: Path, epochs: int) -> dict:
    """Train, evaluate and sample the demo's NADE into `out` (claimed by the caller)."""
    import torch

    from chainrule.data import load_dataset
    from chainrule.evaluation import evaluate_nll
    from chainrule.models import NADE
    from chainrule.persistence import atomic_write_json
    from chainrule.report import image_grid
    from chainrule.training import TrainConfig, fit

    data = load_dataset("digits")
    cfg = TrainConfig(batch_size=32, max_epochs=epochs, lr=3e-3, patience=10, seed=0)
    torch.manual_seed(cfg.seed)  # the initial weights too, as recipes do: one run gives one result
    model = NADE(data.dim, hidden=64, image_shape=list(data.image_shape))
    res = fit(model, data, cfg, out)
    rep = evaluate_nll(model, data.test)
    g = torch.Generator().manual_seed(0)
    image_grid(
        model.sample(64, generator=g),
        data.image_shape,
        out / "samples.png",
        title="NADE on 8x8 binary digits: 64 samples",
    )
    image_grid(data.test[:64], data.image_shape, out / "data.png", title="test images")
    metrics = {
        "dataset": "digits",
        "model": "nade(hidden=64)",
        "test": rep.as_dict(),
        "best_val_nll": res.best_val_nll,
        "train_seconds": round(res.train_seconds, 1),
        "samples_png": str(out / "samples.png"),
        "curves_png": str(out / "curves.png"),
    }
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
