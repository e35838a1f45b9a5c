"""The one contract every chainrule model implements, and the registry used to rebuild models.

`log_prob(x) -> Tensor[B]` in nats and `sample(n, *, given, mask, generator)`; everything else
(trainer, evaluation, CLI, tasks) is written against these two methods only.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import nn

from chainrule.errors import ChainruleError

MODEL_REGISTRY: dict[str, type[Model]] = {}


def register_model(name: str):
    """Class decorator: make a model class loadable by `name` from a config.json."""

    def wrap(cls: type[Model]) -> type[Model]:
        cls.registry_name = name
        MODEL_REGISTRY[name] = cls
        return cls

    return wrap


def build_model(name: str, **kwargs: Any) -> Model:
    """Instantiate a registered model by name, with a clear error for unknown names/arguments."""
    cls = MODEL_REGISTRY.get(name)
    if cls is None:
        raise ChainruleError(f"unknown model {name!r}; known models: {', '.join(sorted(MODEL_REGISTRY))}")
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(kwargs) - set(params) - {"self"})
    if unknown:
        allowed = sorted(p for p in params if p != "self")
        raise ChainruleError(f"model {name!r} has no option(s) {unknown}; options: {allowed}")
    try:
        return cls(**kwargs)
    except ChainruleError:
        raise
    except (TypeError, ValueError, OverflowError, RuntimeError) as e:  # bad values reaching torch
        raise ChainruleError(f"cannot build model {name!r}: {str(e).splitlines()[0]}") from None


class Model(nn.Module):
    """Base class: a density over events of `event_shape` with values of `value_type`.

    Subclasses call `self.remember_config(locals())` in `__init__` so that `save`/`load` can
    rebuild them from JSON alone.
    """

    registry_name: ClassVar[str] = ""
    value_type: str = "binary"  # "binary", "categorical" or "continuous"
    num_values: int = 2
    event_shape: tuple[int, ...] = ()

    def remember_config(self, args: dict[str, Any]) -> None:
        """Store the constructor arguments (JSON-serialisable) for persistence."""
        self._config = {k: v for k, v in args.items() if k not in ("self", "__class__")}

    def config(self) -> dict[str, Any]:
        """The constructor arguments recorded by `remember_config` (what `save` writes to config.json)."""
        return dict(getattr(self, "_config", {}))

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Log-likelihood of each example, in nats (shape (B,))."""
        raise NotImplementedError

    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw `n` samples; with `given`/`mask` (True = observed) complete the unobserved part."""
        raise NotImplementedError

    def training_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """What maximum-likelihood training maximises per example: `log_prob`, or a bound on it
        for models whose likelihood is intractable (the VAE's ELBO)."""
        return self.log_prob(x)

    def validation_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The per-example score used for early stopping (cheaper stand-ins are allowed)."""
        return self.log_prob(x)

    def num_parameters(self) -> int:
        """Number of trainable scalars (masked-out weights included, as stored)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
