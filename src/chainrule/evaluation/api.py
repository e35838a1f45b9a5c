"""`chainrule.evaluate(model, data, split, n)`: the one evaluation the CLI and Python users share.

It dispatches on what the model declares and what the data is: array data (exact NLL, or a
latent-variable model's seeded importance estimate with `k` samples), class-conditional models
(the split's labels are the condition), and token streams (every token scored once). The result
is one JSON-ready dict.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from chainrule.data import SequenceDataset, load_dataset
from chainrule.data.base import Dataset
from chainrule.data.text import text_file
from chainrule.errors import ChainruleError
from chainrule.evaluation.nll import evaluate_nll, split_condition
from chainrule.evaluation.sequence import evaluate_sequence
from chainrule.models.base import Model, models_sequences

SPLITS = ("train", "val", "test")


def evaluate(
    model: Model,
    data: Dataset | SequenceDataset | str,
    split: str = "test",
    n: int | None = None,
    *,
    batch_size: int = 1000,
    k: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    checkpoint: str | os.PathLike | None = None,
    **log_prob_options: Any,
) -> dict[str, Any]:
    """Negative log-likelihood of `model` on a split of `data` (a dataset, or a name as
    `chainrule.data.load_dataset` takes, `text:PATH` encoded with the model's vocabulary).

    `n`: only the first n examples (tokens for a stream). `k`, `generator`: the importance
    samples of a model whose `log_prob` is an estimate (`not model.exact_log_prob`; the default
    generator is seeded with 0, so results repeat); `k` on an exact model is an error.
    `log_prob_options` go to `model.log_prob` (e.g. `num_masks` of a MADE ensemble). Array data
    gives nll_nats, stderr_nats, bits_per_dim, n, dim; token streams give nats_per_<unit>,
    bits_per_<unit>, total_nats, <unit>s, streams, and nll_nats, n, unit. Both add data, split
    and seconds. The model's train/eval mode is left as it was. `checkpoint` (array data): a file
    that keeps the finished batches, so that the same call after a kill goes on where it stopped."""
    if split not in SPLITS:
        raise ChainruleError(f"unknown split {split!r}; use train, val or test")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ChainruleError(f"n must be a positive integer, got {n!r}")
    name = data if isinstance(data, str) else getattr(data, "name", "?")
    start = time.time()
    if models_sequences(model):
        if k is not None:
            raise ChainruleError(f"k applies to latent-variable models (VAE), not {model.registry_name!r}")
        if checkpoint is not None:
            raise ChainruleError("an evaluation checkpoint applies to array data, not to token streams")
        report = _evaluate_stream(model, data, split, n)
    else:
        options = {**log_prob_options, "checkpoint": checkpoint}
        report = _evaluate_arrays(model, data, split, n, batch_size, k, generator, progress, options)
    return {"data": name, "split": split, **report, "seconds": round(time.time() - start, 2)}


def _evaluate_arrays(model, data, split, n, batch_size, k, generator, progress, options) -> dict[str, Any]:
    """Array data: exact (or estimated) NLL of the split's first n examples."""
    dataset = load_dataset(data) if isinstance(data, str) else data
    if isinstance(dataset, SequenceDataset):
        raise ChainruleError(
            f"dataset {dataset.name!r} holds sequences; {model.registry_name!r} does not model them"
        )
    x = dataset.split(split)[:n]
    cond = split_condition(model, dataset, split)
    cond = None if cond is None else cond[:n]
    if x.shape[1] != model.event_shape[0]:
        raise ChainruleError(
            f"dataset {dataset.name!r} has {x.shape[1]} dimensions but the model expects"
            f" {model.event_shape[0]}"
        )
    options = {**options, **latent_options(model, k, generator)}
    return evaluate_nll(model, x, batch_size=batch_size, cond=cond, progress=progress, **options).as_dict()


def latent_options(model: Model, k: int | None, generator: torch.Generator | None) -> dict[str, Any]:
    """log_prob options of an estimated likelihood: a seeded generator (seed 0 by default) and `k`;
    `k` for a model with an exact likelihood is an error."""
    if model.exact_log_prob:
        if k is not None:
            raise ChainruleError(f"k applies to latent-variable models (VAE), not {model.registry_name!r}")
        return {}
    options: dict[str, Any] = {"generator": generator or torch.Generator().manual_seed(0)}
    if k is not None:
        options["k"] = k
    return options


def _evaluate_stream(model, data, split, n) -> dict[str, Any]:
    """Token streams: nats and bits per character (or audio sample), every token once."""
    if isinstance(data, str) and data.startswith("text:"):  # encode with the model's vocabulary
        if model.tokenizer is None:
            raise ChainruleError(f"the model ({model.registry_name!r}) models audio, not text")
        dataset = text_file(data[5:], tokenizer=model.tokenizer)
    else:
        dataset = load_dataset(data) if isinstance(data, str) else data
    if not isinstance(dataset, SequenceDataset):
        raise ChainruleError(
            f"{model.registry_name!r} models sequences; dataset {dataset.name!r} is not text or audio"
        )
    if (dataset.tokenizer is None) != (model.tokenizer is None):
        kinds = ("audio", "text")
        raise ChainruleError(
            f"the model ({model.registry_name!r}) models {kinds[model.tokenizer is not None]} but"
            f" {dataset.name!r} is {kinds[dataset.tokenizer is not None]}"
        )
    tokens = dataset.encoded(split, model.tokenizer)[:n]
    report = evaluate_sequence(model, tokens, unit=dataset.unit)
    return {
        **report.as_dict(),
        "nll_nats": report.nats_per_token,
        "n": report.tokens,
        "unit": report.unit,
    }


def held_out_metrics(
    model: Model, dataset: Dataset | SequenceDataset, runs: dict[str, dict] | None = None
) -> dict:
    """What `fit(..., test=True)` adds to metrics.json: the test split's report under "test" (for
    array data also one report per entry of `runs`, a recipe's `evaluate` section: name -> log_prob
    options, e.g. {"test_elbo": {"k": 1}})."""
    if isinstance(dataset, SequenceDataset):
        return {"test": evaluate_sequence(model, dataset.test, unit=dataset.unit).as_dict()}
    cond = split_condition(model, dataset, "test")
    return {
        name: evaluate_nll(model, dataset.test, cond=cond, **options).as_dict()
        for name, options in ({"test": {}} | (runs or {})).items()
    }
