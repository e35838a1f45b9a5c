"""NLL of array data: mean negative log-likelihood in nats and bits/dim, with its standard error."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from chainrule.devices import model_device
from chainrule.errors import ChainruleError
from chainrule.evaluation.checkpoint import (
    EvaluationProgress,
    evaluation_fingerprint,
    load_progress,
    save_progress,
)
from chainrule.models.base import Model


@dataclass
class NLLReport:
    """`nll_nats` = mean over examples of -log p(x); `stderr_nats` = sample std / sqrt(n) (None
    for a single example: a standard error needs two)."""

    nll_nats: float
    stderr_nats: float | None
    bits_per_dim: float
    n: int
    dim: int

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with `model` in eval mode, then give it back the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_nll(
    model: Model,
    x: torch.Tensor,
    batch_size: int = 1000,
    cond: torch.Tensor | None = None,
    progress: bool = False,
    checkpoint: str | os.PathLike | None = None,
    **log_prob_kwargs,
) -> NLLReport:
    """Exact (or, for latent models, estimated) NLL of `x` under `model`, batched; `cond` (one
    row per example, e.g. class labels) for conditional models. Each batch (and its cond) is
    moved to the model's device and its log-likelihoods back to the CPU in float64, so a model on
    a GPU is evaluated on CPU-held data. The model's train/eval mode is restored afterwards.
    `checkpoint`: a file that keeps the finished batches (`chainrule.evaluation.checkpoint`), so
    that a killed evaluation run again with it goes on where it stopped."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ChainruleError(f"batch size must be a positive integer, got {batch_size!r}")
    if len(x) == 0:
        raise ChainruleError("cannot evaluate an empty data set")
    device = model_device(model)
    generator = log_prob_kwargs.get("generator")
    if checkpoint is not None:
        fingerprint = evaluation_fingerprint(model, x, cond, batch_size, log_prob_kwargs)
        saved = load_progress(checkpoint, fingerprint)
        if saved.generator_state is not None and generator is not None:
            generator.set_state(saved.generator_state)
    else:
        saved = EvaluationProgress()
    if cond is not None:
        log_prob_kwargs["cond"] = None  # filled per batch below
    parts = [saved.log_probs]
    starts = range(saved.done, len(x), batch_size)
    with eval_mode(model):
        done_batches = math.ceil(saved.done / batch_size)  # a resumed run's bar starts where it stopped
        for i in progress_bar(starts, progress, "evaluating", done_batches):
            if cond is not None:
                log_prob_kwargs["cond"] = cond[i : i + batch_size].to(device)
            parts.append(model.log_prob(x[i : i + batch_size].to(device), **log_prob_kwargs).double().cpu())
            if checkpoint is not None:
                state = generator.get_state() if generator is not None else None
                save_progress(checkpoint, fingerprint, EvaluationProgress(torch.cat(parts), state))
    lp = torch.cat(parts)
    check_finite_log_probs(lp)
    n = lp.numel()
    dim = math.prod(x.shape[1:])  # values per example scored (a sequence model declares (None,))
    nll = float(-lp.mean())
    se = float(lp.std(unbiased=True) / math.sqrt(n)) if n > 1 else None
    return NLLReport(nll, se, nll / math.log(2) / dim, n, dim)


def check_finite_log_probs(lp: torch.Tensor) -> None:
    """Refuse to report an NLL from non-finite log-likelihoods (a NaN mean printed as a number is a
    silent wrong answer): NaN or +inf means broken weights or data, -inf an example the model
    gives probability zero (an infinite NLL)."""
    bad = ~torch.isfinite(lp)
    if not bad.any():
        return
    n, k = lp.numel(), int(bad.sum())
    zero = int((lp == float("-inf")).sum())
    if zero == k:
        raise ChainruleError(
            f"{k} of {n} examples have probability zero under the model (log-likelihood -inf), so"
            " the NLL is infinite; is this the data the model was trained on?"
        )
    raise ChainruleError(
        f"{k - zero} of {n} examples got a NaN or +inf log-likelihood: the model's weights or the"
        " data are likely broken (a diverged training run leaves NaN weights); no NLL reported"
    )


def split_condition(model: Model, dataset, split: str) -> torch.Tensor | None:
    """The labels of `split` for a class-conditional model (None for other models), with a clear
    error when the data set has none."""
    if not model.class_conditional:
        return None
    labels = getattr(dataset, "labels", {}) or {}
    if split not in labels:
        raise ChainruleError(
            f"the model is class-conditional but data set {getattr(dataset, 'name', '?')!r} has no"
            f" labels for its {split} split"
        )
    return labels[split]


def progress_bar(items, enabled: bool, what: str, done: int = 0):
    """`items`, wrapped in a tqdm progress bar (on stderr) when `enabled`, counting `done` items
    finished before them (a resumed evaluation)."""
    if not enabled:
        return items
    from tqdm.auto import tqdm  # only when asked: importing tqdm is not free

    return tqdm(items, desc=what, leave=False, initial=done, total=done + len(items))
