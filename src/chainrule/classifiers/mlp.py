"""A multilayer-perceptron classifier: ReLU hidden layers, softmax output, L2 weight penalty.

Objective: mean cross-entropy + 0.5 * weight_decay * sum of squared weights (biases not
penalised), minimised with Adam on shuffled minibatches. With a validation set, training keeps
the parameters of the epoch with the lowest validation log-loss and stops after `patience`
epochs without improvement (early stopping).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.classifiers.base import Classifier, check_features, check_labels
from chainrule.errors import ChainruleError


class MLPClassifier(Classifier):
    """Discriminative neural classifier; `hidden` lists the hidden-layer widths."""

    def __init__(
        self,
        hidden: list[int] | tuple[int, ...] = (64,),
        *,
        weight_decay: float = 1e-4,
        lr: float = 1e-3,
        max_epochs: int = 100,
        batch_size: int = 64,
        patience: int = 10,
        seed: int = 0,
        num_classes: int | None = None,
    ):
        if any(int(h) < 1 for h in hidden):
            raise ChainruleError(f"hidden widths must be positive, got {list(hidden)}")
        if weight_decay < 0 or lr <= 0 or max_epochs < 1 or batch_size < 1:
            raise ChainruleError("need weight_decay >= 0, lr > 0, max_epochs >= 1 and batch_size >= 1")
        self.hidden = [int(h) for h in hidden]
        self.weight_decay = float(weight_decay)
        self.lr = float(lr)
        self.max_epochs = int(max_epochs)
        self.batch_size = int(batch_size)
        self.patience = int(patience)
        self.seed = int(seed)
        self.given_num_classes = num_classes
        self.num_classes = 0

    def _penalty(self) -> torch.Tensor:
        return sum(m.weight.pow(2).sum() for m in self.net if isinstance(m, nn.Linear))

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_val: torch.Tensor | None = None,
        y_val: torch.Tensor | None = None,
    ) -> MLPClassifier:
        """Train on (x, y); with (x_val, y_val), early-stop on validation log-loss."""
        x = check_features(x, dtype=torch.float32)
        y = check_labels(y, x.shape[0], self.given_num_classes)
        k = self._num_classes(y, self.given_num_classes)
        if (x_val is None) != (y_val is None):
            raise ChainruleError("pass both x_val and y_val, or neither")
        if x_val is not None:
            x_val = check_features(x_val, "x_val", num_features=x.shape[1], dtype=torch.float32)
            y_val = check_labels(y_val, x_val.shape[0], k, "y_val")
        g = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            sizes = [x.shape[1], *self.hidden]
            layers: list[nn.Module] = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], k))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        best, best_state, waited = float("inf"), None, 0
        self.history: list[dict[str, float]] = []
        for epoch in range(self.max_epochs):
            self.net.train()
            total = 0.0
            for idx in torch.randperm(x.shape[0], generator=g).split(self.batch_size):
                loss = F.cross_entropy(self.net(x[idx]), y[idx])
                opt.zero_grad()
                (loss + 0.5 * self.weight_decay * self._penalty()).backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            record = {"epoch": epoch, "train_log_loss": total / x.shape[0]}
            if x_val is not None:
                with torch.no_grad():
                    self.net.eval()
                    val = float(F.cross_entropy(self.net(x_val), y_val))
                record["val_log_loss"] = val
                if val < best:
                    best, best_state, waited = val, copy.deepcopy(self.net.state_dict()), 0
                else:
                    waited += 1
            self.history.append(record)
            if x_val is not None and waited > self.patience:
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self.num_features = x.shape[1]
        self.num_classes = k
        return self

    def predict_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        self._require_fitted()
        x = check_features(x, num_features=self.num_features, dtype=torch.float32)
        with torch.no_grad():
            return F.log_softmax(self.net(x), 1)
