"""Generative classification with one class-conditional model: p(y | x) ∝ p(x | y) p(y).

A class-conditional model (`model.class_conditional`, e.g. `GatedPixelCNN(num_classes=10)`)
gives log p(x | y = c) as `model.log_prob(x, cond=c)`. `class_densities` turns it into K
per-class densities, each with `log_prob(x)`, which `chainrule.classifiers.GenerativeClassifier`
combines with a prior by Bayes rule; `generative_classifier` does both, with the prior counted
from training labels. `evaluate_generative_classifier` scores it on labelled data (accuracy, the
NLL under the true class, the marginal NLL, the log loss), with a progress bar over the K × batches
likelihood passes (`chainrule classifier eval MODEL_DIR` runs it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from chainrule.classifiers.base import check_labels
from chainrule.classifiers.bayes_rule import GenerativeClassifier, log_prior_from_labels
from chainrule.devices import model_device
from chainrule.errors import ChainruleError


class ClassDensity(nn.Module):
    """p(x | y = `label`) of a class-conditional model, as a density with `log_prob(x)`. A module
    holding the model, so `eval()` reaches it; `batch_size` bounds memory."""

    def __init__(self, model: nn.Module, label: int, batch_size: int = 1000) -> None:
        super().__init__()
        self.model = model
        self.label = int(label)
        self.batch_size = int(batch_size)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | y = label) of every row, in nats: (N,), on the model's device (each batch and
        its labels are moved there, so a model on a GPU scores CPU-held data)."""
        device = model_device(self.model)
        out = []
        for xb in x.split(self.batch_size):
            cond = torch.full((xb.shape[0],), self.label, dtype=torch.long, device=device)
            out.append(self.model.log_prob(xb.to(device), cond=cond))
        return torch.cat(out)


def class_densities(model, batch_size: int = 1000) -> list[ClassDensity]:
    """One density per class of a class-conditional model: [p(x | y = 0), ..., p(x | y = K-1)]."""
    if not model.class_conditional:
        raise ChainruleError(
            f"{model.registry_name!r} is not class-conditional: build it"
            " with num_classes (e.g. GatedPixelCNN(..., num_classes=10)) and train it with labels"
        )
    return [ClassDensity(model, c, batch_size) for c in range(int(model.num_classes))]


def generative_classifier(
    model,
    train_labels: torch.Tensor | None = None,
    *,
    alpha: float = 0.0,
    batch_size: int = 1000,
) -> GenerativeClassifier:
    """Bayes-rule classifier from one class-conditional model; the prior is the label frequencies of
    `train_labels` (plus `alpha` per class), or uniform when None."""
    densities = class_densities(model, batch_size)
    prior = None
    if train_labels is not None:
        prior = log_prior_from_labels(torch.as_tensor(train_labels), len(densities), alpha)
    return GenerativeClassifier(densities, prior)


def check_fits_data(model, data, where: str = "the model") -> None:
    """Refuse, with a message naming `where` (a folder), a model that cannot classify the labelled
    image dataset `data` (chainrule.data): not class-conditional, other images or levels, fewer
    classes than the labels, or no training labels to count the prior from."""
    name = getattr(data, "name", "?")
    if not model.class_conditional:
        raise ChainruleError(
            f"{where} holds a density model ({model.registry_name}) that"
            " is not class-conditional; a generative classifier needs one built with num_classes (e.g."
            " recipes/gated-pixelcnn-mnist-classes.yaml)"
        )
    shape = tuple(model.image_shape or ())
    data_shape = tuple(data.image_shape or ())  # () for data that are not images
    data_values = getattr(data, "num_values", None)
    if not data_shape or shape != data_shape or model.num_values != data_values:
        what = f"{data_shape} images of {data_values} levels" if data_shape else "no images"
        raise ChainruleError(
            f"{where} models {shape} images of {model.num_values} levels; dataset {name!r} has {what}"
        )
    labels = getattr(data, "labels", {}) or {}
    if "train" not in labels:
        raise ChainruleError(f"dataset {name!r} has no training labels to count the prior p(y) from")
    classes = int(max(int(v.max()) for v in labels.values())) + 1
    if classes > model.num_classes:
        raise ChainruleError(f"dataset {name!r} has {classes} classes; {where} models {model.num_classes}")


def class_log_likelihoods(
    model, x: torch.Tensor, batch_size: int = 500, progress: bool | None = None
) -> torch.Tensor:
    """log p(x | y = c) of every row of x under every class c of a class-conditional model: (N, K)
    float64 on the CPU, batched, without gradients, with a tqdm bar over batches × classes (`progress` None:
    only on a terminal)."""
    from tqdm.auto import tqdm

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ChainruleError(f"batch size must be a positive integer, got {batch_size!r}")
    densities = class_densities(model, batch_size)
    if len(x) == 0:
        raise ChainruleError("cannot classify an empty data set")
    model.eval()
    batches = x.split(batch_size)
    bar = tqdm(
        total=len(batches) * len(densities),
        desc="log p(x | class)",
        unit="batch",
        leave=False,
        disable=None if progress is None else not progress,
    )
    out = []
    with torch.no_grad(), bar:
        for xb in batches:
            columns = []
            for d in densities:
                columns.append(d.log_prob(xb).double().cpu())
                bar.update()
            out.append(torch.stack(columns, 1))
    return torch.cat(out)


@dataclass
class GenerativeEvaluation:
    """A class-conditional model used as a classifier on labelled examples: accuracy by Bayes rule,
    and the likelihoods behind it (nats per example; `bits_per_dim` is of the true-class NLL)."""

    accuracy: float
    examples: int
    nll_true_class_nats: float  # mean -log p(x | y_true)
    nll_true_class_stderr: float
    bits_per_dim: float
    marginal_nll_nats: float  # mean -log sum_c p(c) p(x | c)
    log_loss: float  # mean -log p(y_true | x), the cross-entropy a discriminative classifier minimises
    prior: list[float]  # p(y = c)

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_generative_classifier(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    train_labels: torch.Tensor | None = None,
    *,
    alpha: float = 0.0,
    batch_size: int = 500,
    progress: bool | None = None,
) -> GenerativeEvaluation:
    """Classify x (N, D) by Bayes rule, p(y | x) ∝ p(x | y) p(y), with the prior counted from
    `train_labels` (plus `alpha` per class; uniform when None), and score it against labels y."""
    # the Bayes-rule classifier's prior (refuses a model that is not class-conditional); its
    # likelihoods are computed once here, with a progress bar, rather than per predict call
    log_prior = generative_classifier(model, train_labels, alpha=alpha, batch_size=batch_size).log_prior
    y = check_labels(torch.as_tensor(y), len(x), len(log_prior))
    log_lik = class_log_likelihoods(model, x, batch_size, progress)
    joint = log_lik + log_prior
    marginal = torch.logsumexp(joint, 1)
    true = log_lik.gather(1, y[:, None])[:, 0]
    n = len(x)
    dim = int(x.shape[1])
    return GenerativeEvaluation(
        accuracy=float((joint.argmax(1) == y).double().mean()),
        examples=n,
        nll_true_class_nats=float(-true.mean()),
        nll_true_class_stderr=float(true.std() / math.sqrt(n)) if n > 1 else float("nan"),
        bits_per_dim=float(-true.mean()) / dim / math.log(2),
        marginal_nll_nats=float(-marginal.mean()),
        log_loss=float((marginal - joint.gather(1, y[:, None])[:, 0]).mean()),
        prior=[float(p) for p in log_prior.exp()],
    )
