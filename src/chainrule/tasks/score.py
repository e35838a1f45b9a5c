"""One out-of-distribution experiment (what `chainrule score` runs): score the split of an
in-distribution dataset and of an OOD dataset with every score of `chainrule.tasks.anomaly`,
typicality measured against a held-out split of the in-distribution data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.models.base import Model, models_sequences
from chainrule.tasks.anomaly import OODComparison, check_data_fits, check_same_kind, compare_ood


@dataclass
class OODExperiment:
    """The comparison and what it was computed on (split names and sizes)."""

    comparison: OODComparison
    split: str
    reference_split: str
    n_in: int
    n_ood: int
    n_reference: int


def check_scorable(model: Model, background: Model | None = None) -> None:
    """Refuse models whose inputs the OOD scores do not cover: sequence models, class-conditional
    models, and a background model of other events or with a log_prob of another kind."""
    if models_sequences(model):
        raise ChainruleError("the model is a sequence model; OOD scores score images and arrays")
    if model.class_conditional:
        raise ChainruleError("OOD scores of class-conditional models are not supported yet")
    if background is not None:
        check_same_kind(model, background)
        if background.exact_log_prob != model.exact_log_prob:
            raise ChainruleError("the model and the background model must both be VAEs or both not be")


def score_datasets(
    model: Model,
    data: Any,
    ood: Any,
    *,
    names: tuple[str, str] = ("data", "ood"),
    split: str = "test",
    n: int | None = None,
    background: Model | None = None,
    compressor: str | None = "best",
    batch_size: int = 500,
    log_prob_kwargs: dict[str, Any] | None = None,
) -> OODExperiment:
    """Score the first `n` examples of `split` of `data` (in-distribution) and `ood` (chainrule
    datasets, named `names` in errors); the typicality reference is `data`'s validation split (its
    training split when `split` is "val")."""
    check_scorable(model, background)
    if n is not None and n < 2:
        raise ChainruleError(f"-n must be at least 2, got {n}")
    check_data_fits(model, data, names[0])
    check_data_fits(model, ood, names[1])
    ref_split = "train" if split == "val" else "val"  # held out from the scored inputs
    dtype = torch.get_default_dtype()
    x_in, x_ood = data.split(split)[:n].to(dtype), ood.split(split)[:n].to(dtype)
    x_ref = data.split(ref_split)[:n].to(dtype)
    result = compare_ood(
        model,
        x_in,
        x_ood,
        x_ref,
        background=background,
        compressor=compressor,
        image_shape=data.image_shape,
        batch_size=batch_size,
        log_prob_kwargs=log_prob_kwargs or {},
    )
    return OODExperiment(result, split, ref_split, len(x_in), len(x_ood), len(x_ref))
