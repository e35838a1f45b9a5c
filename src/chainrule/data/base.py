"""The dataset record every loader returns: fixed train/validation/test splits plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Dataset:
    """Splits as tensors of shape (N, D), or lazily read `ArraySplit`s (chainrule.data.arrays)
    that index like them. `num_values` is 2 for binary data, K for K-ary data and 0 for
    real-valued (continuous) data.

    With `dynamic_binarization`, `train` holds probabilities in [0, 1] and each minibatch is a
    fresh Bernoulli draw; validation and test are one fixed binarization, so NLLs compare.
    """

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    num_values: int
    image_shape: tuple[int, ...] | None = None
    dynamic_binarization: bool = False
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    description: str = ""
    columns: list[str] | None = None  # column names, for data read from a table (CSV)

    @property
    def value_type(self) -> str:
        return "continuous" if self.num_values == 0 else "binary" if self.num_values == 2 else "categorical"

    @property
    def dim(self) -> int:
        """Number of dimensions D of each example."""
        return int(self.train.shape[1])

    def split(self, name: str) -> torch.Tensor:
        """The split `name` ("train", "val" or "test"); a dynamically binarized training split
        is returned as one fixed binarization (seed 1234), so evaluating it is repeatable."""
        from chainrule.errors import ChainruleError

        if name not in ("train", "val", "test"):
            raise ChainruleError(f"unknown split {name!r}; use train, val or test")
        x = getattr(self, name)
        if name == "train" and self.dynamic_binarization:
            if not isinstance(x, torch.Tensor):
                return x.binarized(1234)
            g = torch.Generator().manual_seed(1234)
            x = torch.bernoulli(x, generator=g)
        return x
