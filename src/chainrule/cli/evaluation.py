"""`chainrule eval MODEL_DIR --data NAME`: the NLL of a saved model on a dataset split (one JSON line)."""

from __future__ import annotations

import time

from chainrule.cli.common import SPLITS, CommandParser, latent_kwargs
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    e = sub.add_parser(
        "eval",
        help="NLL of a saved model on a dataset split (one JSON line)",
        description="Negative log-likelihood of every example of a split, in nats and bits/dim (sequence"
        " models: nats and bits per character or audio sample, every token once). Class-conditional"
        " models are scored given the true labels; a VAE's NLL is its importance-sampling estimate.",
    )
    e.add_argument("model_dir", help="a saved model folder (runs/.../model or zoo/...)")
    e.add_argument(
        "--data", required=True, help="dataset name (chainrule datasets lists them), text:PATH or wav:PATH"
    )
    e.add_argument("--split", default="test", choices=SPLITS)
    e.add_argument("--batch-size", type=int, default=1000)
    e.add_argument("--masks", type=int, default=None, help="MADE: number of masks in the ensemble")
    e.add_argument(
        "--k",
        type=int,
        default=None,
        help="VAE: importance samples per example (default 1000; 1 = a one-sample ELBO)",
    )
    e.add_argument("--seed", type=int, default=0, help="VAE: seed of the importance samples")
    e.set_defaults(handler=cmd_eval)
    return e


# TODO(i19): call chainrule.evaluate / fit(test=True): `eval_sequence_model` and the evaluation in
# `cmd_eval` below move into the library's evaluate function; the lead swaps them in at merge time.
def eval_sequence_model(model, args) -> dict:
    """nats and bits per character (or per audio sample) of a whole split, every token once."""
    from chainrule.data import load_dataset
    from chainrule.data.text import text_file
    from chainrule.evaluate import evaluate_sequence

    if args.data.startswith("text:"):  # encode with the model's vocabulary, not the file's own
        if model.tokenizer is None:
            raise ChainruleError(f"{args.model_dir} models audio, not text")
        data = text_file(args.data[5:], tokenizer=model.tokenizer)
    else:
        data = load_dataset(args.data)
    if not hasattr(data, "encoded"):
        raise ChainruleError(f"{args.model_dir} models sequences; dataset {args.data!r} is not text or audio")
    if (data.tokenizer is None) != (model.tokenizer is None):
        kinds = ("audio", "text")
        raise ChainruleError(
            f"{args.model_dir} models {kinds[model.tokenizer is not None]} but {args.data!r} is"
            f" {kinds[data.tokenizer is not None]}"
        )
    x = data.encoded(args.split, model.tokenizer)
    t = time.time()
    rep = evaluate_sequence(model, x, unit=data.unit).as_dict()
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "split": args.split,
        **rep,
        "seconds": round(time.time() - t, 2),
    }


def cmd_eval(args) -> dict:
    from chainrule.data import SequenceDataset, load_dataset
    from chainrule.evaluate import evaluate_nll, split_condition
    from chainrule.persistence import load

    model = load(args.model_dir)
    if model.conditioned_on == "prefix":
        return eval_sequence_model(model, args)
    data = load_dataset(args.data)
    if isinstance(data, SequenceDataset):
        raise ChainruleError(f"dataset {args.data!r} holds sequences; {args.model_dir} does not model them")
    x = data.split(args.split)
    if x.shape[1] != model.event_shape[0]:
        raise ChainruleError(
            f"dataset {args.data!r} has {x.shape[1]} dimensions but the model expects {model.event_shape[0]}"
        )
    kwargs = {"num_masks": args.masks} if args.masks else {}
    kwargs.update(latent_kwargs(model, args.k, args.seed))
    t = time.time()
    cond = split_condition(model, data, args.split)
    rep = evaluate_nll(model, x, batch_size=args.batch_size, cond=cond, **kwargs).as_dict()
    return {
        "model_dir": args.model_dir,
        "data": args.data,
        "split": args.split,
        **rep,
        "seconds": round(time.time() - t, 2),
    }
