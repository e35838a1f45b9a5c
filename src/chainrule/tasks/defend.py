"""PixelDefend (Song et al. 2018): attack a classifier, detect the attacks by likelihood rank, purify.

`defend_report` runs the whole experiment on N labelled test images: the classifier's accuracy on
clean images, on FGSM/PGD adversarial images at each ε, and on both after purification with the
density model (greedy decoding inside an ε_def-ball, chainrule.tasks.purify); and the AUROC of
detecting each attack from likelihood-rank p-values against reference (training) images
(chainrule.tasks.likelihood_rank). Attacks live in chainrule.tasks.attacks.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from chainrule.classifiers.base import check_labels
from chainrule.errors import ChainruleError
from chainrule.tasks.attacks import ATTACKS, attack, check_epsilon, epsilon_levels
from chainrule.tasks.likelihood_rank import detection_auroc, log_likelihoods, rank_p_values
from chainrule.tasks.purify import check_purifier, purify


def check_compatible(
    model, classifier, image_shape: tuple[int, ...] | None, num_values: int, data: str
) -> None:
    """The density model, the classifier and the data must agree on image size and levels."""
    check_purifier(model)
    model_shape = tuple(model.image_shape or ())
    if not image_shape:
        raise ChainruleError(f"{data} holds no images")
    for who, shape, levels in (
        ("the density model", model_shape, model.num_values),
        (
            "the classifier",
            tuple(classifier.image_shape or ()),
            getattr(classifier, "num_values", 0),
        ),
    ):
        if tuple(shape) != tuple(image_shape):
            raise ChainruleError(
                f"{who} was trained on images of shape {tuple(shape)}; {data} has {tuple(image_shape)}"
            )
        if levels != num_values:
            raise ChainruleError(f"{who} models {levels} levels per pixel; {data} has {num_values}")


#: Class names shown under the pictures, per dataset.
CLASS_NAMES = {"fashion-mnist": "chainrule.data.fashion_mnist"}


def load_defence(model_dir: str | os.PathLike, classifier_dir: str | os.PathLike, data_name: str):
    """(density model, classifier, dataset) from their folders and name, refusing swapped folders,
    non-8-bit or unlabelled data, and models or classifiers of another image size."""
    from chainrule.classifiers import load_classifier
    from chainrule.data import SequenceDataset, load_dataset
    from chainrule.persistence import load

    config = Path(model_dir) / "config.json"
    try:
        holds_classifier = config.is_file() and "classifier" in json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        holds_classifier = False  # `load` says what is wrong with the file
    if holds_classifier:
        raise ChainruleError(f"{model_dir} holds a classifier; MODEL_DIR is the density model (the purifier)")
    data = load_dataset(data_name)
    if isinstance(data, SequenceDataset) or not data.image_shape:
        raise ChainruleError(f"dataset {data_name!r} holds no images")
    if data.num_values != 256:
        raise ChainruleError(
            f"the attacks and purification work on 8-bit images (256 levels); dataset {data_name!r} has"
            f" {data.num_values} levels per pixel (use fashion-mnist or mnist-8bit)"
        )
    if not data.labels:
        raise ChainruleError(f"dataset {data_name!r} has no class labels to attack")
    model = load(model_dir)
    classifier = load_classifier(classifier_dir)
    check_compatible(model, classifier, tuple(data.image_shape), data.num_values, f"dataset {data_name!r}")
    return model, classifier, data


def class_names(data_name: str) -> tuple[str, ...] | None:
    """The class names of a named dataset, where chainrule knows them."""
    if data_name not in CLASS_NAMES:
        return None
    import importlib

    return tuple(importlib.import_module(CLASS_NAMES[data_name]).CLASSES)


@dataclass
class DefendResult:
    """`table`: the figures (JSON-ready); `images`, `predictions`: the first `show` images of every
    set (clean, purified clean, each attack and its purification) and the classifier's labels for
    them, for `chainrule.report.defend_figure`; `labels`: their true labels."""

    table: dict[str, Any]
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    predictions: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: torch.Tensor | None = None


def _bits_per_dim(log_lik: torch.Tensor, dim: int) -> float:
    return float(-log_lik.mean() / (dim * math.log(2)))


def _check_settings(model, classifier, attacks, eps, defend_eps) -> tuple[list[float], float]:
    """The checked attack ε list and purification ε; refuse unknown attacks and mismatched models."""
    eps = [check_epsilon(e, "eps") for e in eps]
    defend_eps = check_epsilon(defend_eps, "defend eps")
    if not eps:
        raise ChainruleError("give at least one attack ε")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown or not attacks:
        raise ChainruleError(f"unknown attack(s) {unknown}; choose from {', '.join(ATTACKS)}")
    clf_shape = tuple(classifier.image_shape or ())
    check_compatible(model, classifier, clf_shape, getattr(classifier, "num_values", 0), "the classifier")
    return eps, defend_eps


def _row(name, eps, eps_levels, accuracies, auroc, p_values, log_lik, purified_log_lik, dim) -> dict:
    """One row of the defend table."""
    return {
        "input": name,
        "eps": eps,
        "eps_levels": eps_levels,
        "accuracy": accuracies[0],
        "purified_accuracy": accuracies[1],
        "detection_auroc": auroc,
        "median_p_value": float(p_values.median()),
        "bits_per_dim": _bits_per_dim(log_lik, dim),
        "purified_bits_per_dim": _bits_per_dim(purified_log_lik, dim),
    }


def _table(n: int, levels: int, references: int, settings: dict, rows: list, seconds: dict) -> dict:
    """The defend table: sizes, the settings that made it, its rows and the time of each part."""
    step = settings["pgd_step_size"]
    return {
        "n": n,
        "num_values": levels,
        "reference_images": references,
        "defend_eps": settings["defend_eps"],
        "defend_eps_levels": epsilon_levels(settings["defend_eps"], levels),
        "pgd_steps": settings["pgd_steps"],
        "pgd_step_size": step if step is not None else "2.5 eps / steps",
        "seed": settings["seed"],
        "rows": rows,
        "seconds": seconds,
    }


def defend_report(
    model,
    classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    reference: torch.Tensor,
    *,
    attacks: tuple[str, ...] | list[str] = ATTACKS,
    eps: tuple[float, ...] | list[float] = (8 / 255, 16 / 255),
    defend_eps: float = 16 / 255,
    pgd_steps: int = 10,
    pgd_step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 100,
    show: int = 6,
    progress: bool = True,
) -> DefendResult:
    """Accuracy clean / attacked / purified-clean / purified-attacked for every attack and ε, and the
    detection AUROC of every attack from likelihood-rank p-values against `reference` images.
    Images are levels (N, D) of the model's and classifier's image shape; y are their labels."""
    eps, defend_eps = _check_settings(model, classifier, attacks, eps, defend_eps)
    x = model.prepare(x, "x").to(torch.float32)
    y = check_labels(y, x.shape[0], getattr(classifier, "num_classes", None))
    reference = model.prepare(reference, "reference images")
    dim, levels = x.shape[1], model.num_values
    seconds: dict[str, float] = {}

    def timed(key: str, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds[key] = round(seconds.get(key, 0.0) + time.perf_counter() - t, 2)
        return out

    def ll(images: torch.Tensor, what: str) -> torch.Tensor:
        return timed("likelihood", lambda: log_likelihoods(model, images, batch_size, progress, what))

    def accuracy(images: torch.Tensor) -> tuple[float, torch.Tensor]:
        pred = classifier.predict(images.to(torch.float32))
        return float((pred == y).double().mean()), pred

    def purified(images: torch.Tensor) -> torch.Tensor:
        return timed(
            "purify", lambda: purify(model, images, defend_eps, batch_size=batch_size, progress=progress)
        )

    reference_ll = ll(reference, "reference log p(x)")
    clean_ll = ll(x, "clean log p(x)")
    p_clean = rank_p_values(clean_ll, reference_ll)
    acc, pred = accuracy(x)
    pure = purified(x)
    pacc, ppred = accuracy(pure)
    result = DefendResult(table={}, labels=y[:show].clone())
    result.images.update({"clean": x[:show], "clean, purified": pure[:show]})
    result.predictions.update({"clean": pred[:show], "clean, purified": ppred[:show]})
    pure_ll = ll(pure, "purified log p(x)")
    rows = [_row("clean", 0.0, 0, (acc, pacc), None, p_clean, clean_ll, pure_ll, dim)]
    g = torch.Generator().manual_seed(seed)
    for name in attacks:
        for e in eps:
            kwargs = {"steps": pgd_steps, "step_size": pgd_step_size, "generator": g} if name == "pgd" else {}
            adv = timed("attack", attack, name, classifier, x, y, e, batch_size=batch_size, **kwargs)
            adv_ll = ll(adv, f"{name} log p(x)")
            p_adv = rank_p_values(adv_ll, reference_ll)
            acc, pred = accuracy(adv)
            pure = purified(adv)
            pacc, ppred = accuracy(pure)
            tag = f"{name} {epsilon_levels(e, levels)}/{levels - 1}"
            result.images.update({tag: adv[:show], f"{tag}, purified": pure[:show]})
            result.predictions.update({tag: pred[:show], f"{tag}, purified": ppred[:show]})
            auroc, pure_ll = detection_auroc(p_clean, p_adv), ll(pure, "purified log p(x)")
            lv = epsilon_levels(e, levels)
            rows.append(_row(name, e, lv, (acc, pacc), auroc, p_adv, adv_ll, pure_ll, dim))
    settings = {
        "defend_eps": defend_eps,
        "pgd_steps": pgd_steps,
        "pgd_step_size": pgd_step_size,
        "seed": seed,
    }
    result.table = _table(len(x), levels, len(reference), settings, rows, seconds)
    return result


def format_defend_table(table: dict[str, Any]) -> str:
    """The rows of a `defend_report` table as aligned text (accuracies in %)."""
    top = table.get("num_values", 256) - 1
    lines = [
        f"{table['n']} images; purification eps_def = {table['defend_eps_levels']}/{top};"
        f" detection p-values against {table['reference_images']} reference images",
        f"{'input':<8}{'eps':>8}{'accuracy':>10}{'purified':>10}{'det. AUROC':>12}{'median p':>10}"
        f"{'bits/dim':>10}{'purified b/d':>14}",
    ]
    for r in table["rows"]:
        eps = "-" if r["input"] == "clean" else f"{r['eps_levels']}/{top}"
        auroc = "-" if r["detection_auroc"] is None else f"{r['detection_auroc']:.3f}"
        lines.append(
            f"{r['input']:<8}{eps:>8}{100 * r['accuracy']:>9.1f}%{100 * r['purified_accuracy']:>9.1f}%"
            f"{auroc:>12}{r['median_p_value']:>10.3f}{r['bits_per_dim']:>10.3f}{r['purified_bits_per_dim']:>14.3f}"
        )
    return "\n".join(lines)
