"""How a batch becomes per-example (or per-token) negative log-likelihoods, for each kind of data.

`MaximumLikelihood` (module.py) is the same for every kind of data: it minimises the mean of what
the objective returns, checks it is finite, logs `train_nll_step`/`train_nll_epoch`, `val_nll`
and the bits figure the objective names. The objectives differ only in batches:

- `ArrayObjective`: (N, D) rows with their indices; dynamic binarization, `train.perturb_rate`,
  class labels as the condition, `train.compile` of models without their own kernels;
- `SequenceObjective`: chunks of token streams (sequence_data.py), the state carried from one
  chunk to the next where the model carries one (truncated BPTT); `train.compile` of the
  training chunks.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from chainrule.compiling import compiled_or_eager
from chainrule.data.binarize import binarize
from chainrule.data.perturb import perturb
from chainrule.models.base import Model
from chainrule.training.config import TrainConfig
from chainrule.validation import check_discrete, check_finite, values_checked_upstream

#: rows per pass of `check_dataset_values` (bounds its temporary memory on large splits)
CHECK_ROWS = 8192


def check_dataset_values(model: Model, dataset) -> bool:
    """Check every value of the train and validation splits (and class labels) once, with the
    checks the model would run on each batch; True when the batches can then skip them
    (`values_checked_upstream`). Splits read lazily from disk keep their per-batch checks (False),
    as does a model whose dimensions differ in cardinality. Bad data fails here, before training."""
    per_dim = model.values_per_dimension()
    if per_dim is not None and len(set(per_dim)) > 1:
        return False
    splits = {"train": dataset.train, "val": dataset.val}
    if not all(isinstance(x, torch.Tensor) for x in splits.values()):
        return False
    for name, x in splits.items():
        if name == "train" and dataset.dynamic_binarization:
            continue  # binarize() draws exact 0/1 values from whatever probabilities it is given
        for start in range(0, len(x), CHECK_ROWS):
            rows, what = x[start : start + CHECK_ROWS], f"the {name} split of {dataset.name!r}"
            if per_dim is None:
                check_finite(rows, what)
            else:
                check_discrete(rows, per_dim[0], what)
        if model.class_conditional and name in dataset.labels:
            check_discrete(dataset.labels[name], model.num_classes, f"the {name} labels")
    return True


def training_call(objective, fn, compile: bool, *args):
    """`fn(*args)` for a training step of `objective`; with `train.compile` (`compile`) and a model
    without compiled kernels of its own (`compiles_itself`), through torch.compile, built on first
    use and kept in `objective._compiled` (a compiled function does not pickle)."""
    if not compile or objective.model.compiles_itself:
        return fn(*args)
    if objective._compiled is None:
        objective._compiled = compiled_or_eager(fn, static=False)
    return objective._compiled(*args)


class ArrayObjective:
    """-log p(x | cond) of each row of a batch (x, index); `labels` per split for class-conditional
    models (cond = labels[split][index]), `num_values` for `train.perturb_rate`; `values_checked`
    when `check_dataset_values` has checked the splits (the batches then skip the value checks)."""

    def __init__(
        self,
        model: Model,
        config: TrainConfig,
        dynamic_binarization: bool = False,
        labels: dict[str, torch.Tensor] | None = None,
        num_values: int = 2,
        values_checked: bool = False,
    ) -> None:
        self.model, self.config = model, config
        self.values_checked = values_checked  # by check_dataset_values: batches skip value checks
        self.dynamic_binarization = dynamic_binarization
        self.labels = labels
        self.num_values = num_values
        self.bits_name = "val_bits_per_dim"
        self.dim = model.event_shape[0]
        self._compiled = None  # built on first use (a compiled function does not pickle)

    def _condition(self, split: str, index: torch.Tensor) -> torch.Tensor | None:
        return None if self.labels is None else self.labels[split].to(index.device)[index]

    def _training_log_prob(self, *args: torch.Tensor) -> torch.Tensor:
        """The model's training objective, compiled as `training_call` says."""
        return training_call(self, self.model.training_log_prob, self.config.compile, *args)

    def train_nll(self, batch, epoch: int) -> torch.Tensor:
        """Per-example -log p (a bound for intractable models) of a training batch."""
        x, index = batch
        cfg = self.config
        if self.dynamic_binarization:
            x = binarize(x, index, cfg.seed, epoch)
        if cfg.perturb_rate:  # a background model (Ren et al. 2019): corrupt every batch afresh
            x = perturb(x, index, cfg.perturb_rate, self.num_values, cfg.seed, epoch)
        cond = self._condition("train", index)
        with self._checks_done():
            return -self._training_log_prob(*((x,) if cond is None else (x, cond))).float()

    def val_nll(self, batch) -> torch.Tensor:
        """Per-example -log p of a validation batch."""
        x, index = batch[0], batch[1]
        cond = self._condition("val", index)
        with self._checks_done():
            return -self.model.validation_log_prob(*((x,) if cond is None else (x, cond))).float()

    def _checks_done(self):
        """`values_checked_upstream` when the dataset's values were checked before training."""
        return values_checked_upstream() if self.values_checked else nullcontext()

    def end_validation(self) -> None:
        """Nothing carried between validation batches."""


class SequenceObjective:
    """-log p of each scored token of a chunk batch: (ids (B, T+1), fresh) for training, the first
    column context only; (ids, valid, fresh) for validation (`chainrule.evaluation.eval_chunks`)."""

    def __init__(self, model: Model, unit: str = "char", compile: bool = False) -> None:
        self.model = model
        self.compile = compile  # `train.compile`: training chunks through torch.compile
        self.bits_name = f"val_bits_per_{unit}"
        self.dim = 1
        self._train_state = None
        self._val_state = None
        self._compiled = None  # built on first use (a compiled function does not pickle)

    def _training_chunk_log_prob(self, x: torch.Tensor, state):
        """`chunk_log_prob` of a training chunk, compiled as `training_call` says (training chunks
        all have one shape; validation chunks vary and stay eager)."""
        return training_call(self, self.model.chunk_log_prob, self.compile, x, state)

    def train_nll(self, batch, epoch: int) -> torch.Tensor:
        x, fresh = batch
        model = self.model
        state = model.begin(x[:, :1]) if fresh or self._train_state is None else self._train_state
        logp, state = self._training_chunk_log_prob(x[:, 1:], state)
        if model.carries_state:
            self._train_state = model.detach_state(state)
        return -logp.float()

    def val_nll(self, batch) -> torch.Tensor:
        x, valid, fresh = batch
        model = self.model
        state = model.begin(model.bos_column(x.shape[0])) if fresh else self._val_state
        logp, self._val_state = model.chunk_log_prob(x, state)
        return -logp.double()[valid]

    def end_validation(self) -> None:
        self._val_state = None
