"""A small convolutional classifier of images: the discriminative model PixelDefend protects.

Inputs are flat images of levels 0..L-1 (as every chainrule image dataset stores them), shape
(N, H * W * C) with the channel fastest; the network sees them scaled to [0, 1]. Architecture:
`len(channels)` blocks of 3 × 3 convolution + ReLU + 2 × 2 max-pooling, then a ReLU hidden layer
of `hidden` units with dropout, then K logits. With the defaults (32, 64 channels, 128 hidden)
it has 0.42M parameters and reaches about 91 % on Fashion-MNIST after a few CPU minutes.

`scaled_logits(u)` takes [0, 1]-scaled inputs and is differentiable in them: the gradient the
attacks (chainrule.tasks.attacks) follow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.classifiers.base import Classifier, check_features, check_labels
from chainrule.classifiers.train_config import ClassifierTrainConfig
from chainrule.errors import ChainruleError
from chainrule.persistence import CONFIG, register_classifier, save


class ConvNet(nn.Module):
    """(N, H*W*C) in [0, 1] → (N, K) logits: conv-ReLU-pool blocks, a hidden layer, dropout."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: list[int],
        hidden: int,
        classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        h, w, c = image_shape
        blocks: list[nn.Module] = []
        for width in channels:
            blocks += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = width, h // 2, w // 2
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h, w, c = self.image_shape
        return self.head(self.features(u.reshape(-1, h, w, c).permute(0, 3, 1, 2)))


@register_classifier("cnn")
class CNNClassifier(Classifier):
    """Convolutional classifier of (H, W) or (H, W, C) images with `num_values` levels per sub-pixel.
    The network is built (seeded by `seed`) at construction; `fit` trains it."""

    def __init__(
        self,
        image_shape: list[int] | tuple[int, ...] = (28, 28),
        num_values: int = 256,
        num_classes: int = 10,
        channels: list[int] | tuple[int, ...] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
        seed: int = 0,
    ) -> None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ChainruleError(f"image_shape must be [H, W] or [H, W, C], got {list(image_shape)}")
        full = shape if len(shape) == 3 else (*shape, 1)
        if int(num_values) < 2 or int(num_classes) < 2:
            raise ChainruleError(
                f"need num_values >= 2 and num_classes >= 2, got {num_values}, {num_classes}"
            )
        if not channels or any(int(c) < 1 for c in channels) or int(hidden) < 1 or not 0 <= dropout < 1:
            raise ChainruleError("need positive channels and hidden sizes and 0 <= dropout < 1")
        if min(full[:2]) >> len(channels) < 1:
            raise ChainruleError(
                f"{len(channels)} pooling blocks shrink {full[0]}x{full[1]} images to nothing:"
                " give fewer channels (one block per entry)"
            )
        self.image_shape = shape
        self.num_values = int(num_values)
        self.num_classes = int(num_classes)
        self.num_features = full[0] * full[1] * full[2]
        self._config = {
            "image_shape": list(shape),
            "num_values": self.num_values,
            "num_classes": self.num_classes,
            "channels": [int(c) for c in channels],
            "hidden": int(hidden),
            "dropout": float(dropout),
            "seed": int(seed),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ConvNet(
                full, [int(c) for c in channels], int(hidden), self.num_classes, float(dropout)
            )
        self.net.eval()
        self.training_info: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments (what `save_classifier` writes to config.json)."""
        return dict(self._config)

    def num_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.net.parameters())

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Levels 0..L-1 → [0, 1] (float32)."""
        return x.to(torch.float32) / (self.num_values - 1)

    def check_images(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """(N, D) float32 levels in [0, L-1], refusing other shapes and out-of-range values."""
        if isinstance(x, torch.Tensor) and x.dim() > 2:
            x = x.reshape(x.shape[0], -1)
        if isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] != self.num_features:
            size = "x".join(map(str, self.image_shape))
            raise ChainruleError(
                f"{what} has {x.shape[1]} values per image; this classifier takes {size} images"
                f" ({self.num_features} values)"
            )
        x = check_features(x, what, num_features=self.num_features, dtype=torch.float32)
        if (x < 0).any() or (x > self.num_values - 1).any():
            bad = x[(x < 0) | (x > self.num_values - 1)][0].item()
            raise ChainruleError(
                f"{what} holds {bad!r}; this classifier takes pixel levels in [0, {self.num_values - 1}]"
            )
        return x

    def scaled_logits(self, u: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of [0, 1]-scaled images (N, D); differentiable in `u` (for the attacks)."""
        return self.net(u)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of images given as levels (N, D); differentiable."""
        return self.net(self.scale(self.check_images(x)))

    def predict_log_proba(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """log p(y = c | x) for images given as levels: (N, K)."""
        x = self.check_images(x)
        self.net.eval()
        with torch.no_grad():
            out = [F.log_softmax(self.net(self.scale(b)), 1) for b in x.split(batch_size)]
        return torch.cat(out)

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        config: ClassifierTrainConfig | None = None,
        out_dir: str | os.PathLike | None = None,
    ):
        """Train on (x, y) with early stopping on (x_val, y_val) accuracy, on Lightning (see
        `chainrule.classifiers.lightning_fit.fit_classifier`); returns its ClassifierFitResult."""
        from chainrule.classifiers.lightning_fit import fit_classifier

        x = self.scale(self.check_images(x))
        y = check_labels(y, x.shape[0], self.num_classes)
        x_val = self.scale(self.check_images(x_val, "x_val"))
        y_val = check_labels(y_val, x_val.shape[0], self.num_classes, "y_val")
        result = fit_classifier(self.net, x, y, x_val, y_val, config, out_dir)
        self.training_info = {
            "best_val_acc": result.best_val_acc,
            "best_epoch": result.best_epoch,
            "epochs": result.epochs,
            "train_seconds": round(result.train_seconds, 1),
            "history": result.history,
            "train_config": result.config,
            "num_parameters": self.num_parameters(),
        }
        return result


def train_cnn_on(
    dataset,
    out_dir: str | os.PathLike,
    config: ClassifierTrainConfig | None = None,
    **arch: Any,
) -> tuple[CNNClassifier, dict[str, Any]]:
    """Train a CNNClassifier on a labelled image dataset (chainrule.data), early-stopping on its
    validation split; save it to `out_dir` (safetensors + JSON, logs in `out_dir/logs`) with its
    test accuracy. `arch` holds CNNClassifier options (channels, hidden, dropout, seed)."""
    name = getattr(dataset, "name", "?")
    if not dataset.image_shape or getattr(dataset, "num_values", 0) < 2:
        raise ChainruleError(
            f"dataset {name!r} holds no images of discrete levels; the CNN classifies images"
        )
    labels = getattr(dataset, "labels", {}) or {}
    missing = [s for s in ("train", "val", "test") if s not in labels]
    if missing:
        raise ChainruleError(f"dataset {name!r} has no labels for its {', '.join(missing)} split(s)")
    out = Path(out_dir)
    if (out / CONFIG).is_file():
        raise ChainruleError(f"{out} already holds a model or classifier; choose another --out or delete it")
    num_classes = int(max(int(labels[s].max()) for s in labels)) + 1
    clf = CNNClassifier(list(dataset.image_shape), dataset.num_values, num_classes, **arch)
    x_train, x_val, x_test = (dataset.split(s) for s in ("train", "val", "test"))
    clf.fit(x_train, labels["train"], x_val, labels["val"], config, out)
    metrics = {
        "dataset": name,
        "test_accuracy": clf.score(x_test, labels["test"]),
        "test_examples": len(x_test),
        **{k: v for k, v in clf.training_info.items() if k != "history"},
    }
    save(clf, out, extra={"training": {**clf.training_info, **metrics}})
    return clf, metrics
