"""`chainrule eval MODEL_DIR --data NAME`: the NLL of a saved model on a dataset split (one JSON line)."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.common import SPLITS, CommandParser, load_model_or_bif, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    e = sub.add_parser(
        "eval",
        help="NLL of a saved model on a dataset split (one JSON line)",
        description="Negative log-likelihood of every example of a split, in nats and bits/dim (sequence"
        " models: nats and bits per character or audio sample, every token once). Class-conditional"
        " models are scored given the true labels; a VAE's NLL is its importance-sampling estimate.",
    )
    e.add_argument("model_dir", help="a saved model folder (runs/.../model or zoo/...) or a BIF file")
    e.add_argument(
        "--data", required=True, help="dataset name (chainrule datasets lists them), text:PATH or wav:PATH"
    )
    e.add_argument("--split", default="test", choices=SPLITS)
    e.add_argument("--batch-size", type=int, default=1000)
    e.add_argument(
        "-n", "--limit", type=int, default=None, help="score only the first N examples (tokens of a stream)"
    )
    e.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar over the batches, on stderr (default: only when stderr is a terminal)",
    )
    e.add_argument(
        "--masks", type=int, default=None, help="MADE, RNADE: number of masks (orders) in the ensemble"
    )
    e.add_argument(
        "--orderings",
        type=int,
        default=None,
        help="deep-nade/deep-rnade: number of orderings in the ensemble (1: the first ordering alone)",
    )
    e.add_argument(
        "--k",
        type=int,
        default=None,
        help="VAE: importance samples per example (default 1000; 1 = a one-sample ELBO)",
    )
    e.add_argument("--seed", type=seed_value, default=0, help="VAE: seed of the importance samples")
    e.add_argument(
        "--checkpoint",
        metavar="FILE",
        default=None,
        help="keep each finished batch's log-likelihoods in FILE; the same command again goes on after"
        " the last one saved (for evaluations that take hours: an EoNADE's 128 orderings, a VAE with a"
        " large --k). A smaller --batch-size saves more often",
    )
    e.set_defaults(handler=cmd_eval)
    return e


def cmd_eval(args) -> dict:
    import torch

    from chainrule.evaluation import evaluate

    model = load_model_or_bif(args.model_dir)
    if args.k is not None and model.exact_log_prob:
        raise ChainruleError(f"--k applies to latent-variable models (VAE), not {model.registry_name!r}")
    options = ensemble_options(model, {"num_masks": args.masks, "num_orderings": args.orderings})
    generator = torch.Generator().manual_seed(args.seed)
    report = evaluate(
        model,
        args.data,
        args.split,
        args.limit,
        batch_size=args.batch_size,
        k=args.k,
        generator=generator,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
        checkpoint=args.checkpoint,
        **options,
    )
    return {"model_dir": args.model_dir, **report}


#: the eval flag of each ensemble keyword a model can declare
ENSEMBLE_FLAGS = {"num_masks": "--masks", "num_orderings": "--orderings"}


def ensemble_options(model, given: dict[str, int | None]) -> dict[str, int]:
    """The `log_prob` option of the ensemble flags given, refused with one line for a model that
    is not that kind of ensemble (the model declares its `ensemble_keyword`)."""
    chosen = {k: v for k, v in given.items() if v is not None}
    for keyword in chosen:
        if keyword != model.ensemble_keyword:
            takes = ENSEMBLE_FLAGS.get(model.ensemble_keyword)
            raise ChainruleError(
                f"{ENSEMBLE_FLAGS[keyword]} does not apply to {model.registry_name!r}"
                + (f"; its ensemble size is set with {takes}" if takes else ", which is not an ensemble")
            )
    return chosen
