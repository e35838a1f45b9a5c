"""The one contract every chainrule model implements, and the registry used to rebuild models.

`log_prob(x, cond=None) -> Tensor[B]` in nats and `sample(n, cond, *, given, mask, generator)`,
plus declared capabilities (`value_type`, `image_shape`, `exact_log_prob`, `conditioned_on`, ...);
everything else (trainer, evaluation, CLI, tasks) is written against these only.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, ClassVar

import torch
from torch import nn

from chainrule.errors import ChainruleError, first_line
from chainrule.models.arguments import check_image_matches, check_value
from chainrule.validation import check_generator, check_num_samples

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
    except ChainruleError as e:  # name the model: the message names the argument
        raise ChainruleError(f"model {name!r}: {e}" if name not in str(e) else str(e)) from None
    except (TypeError, ValueError, OverflowError, RuntimeError, MemoryError) as e:  # values reaching torch
        detail = first_line(e, "not enough memory for its sizes")  # a bare MemoryError
        raise ChainruleError(f"cannot build model {name!r}: {detail}") from None


def _checked_init(cls: type, init: Any) -> Any:
    """Wrap a model class's `__init__`: check each argument against its annotation (and range, see
    chainrule.models.arguments) before the body runs; once the outermost constructor has run, check
    that the declared image_shape matches the event."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # a missing or unknown argument: Python's own message
            return init(self, *args, **kwargs)
        for pname, value in list(bound.arguments.items())[1:]:
            param = signature.parameters[pname]
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                check_value(pname, value, param.annotation, "")
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # the outermost constructor has finished
            check_image_matches(self)

    return __init__


#: What a model can be conditioned on (`Model.conditioned_on`): nothing (a plain density), a class
#: label (p(x | y), `num_classes` > 0), a vector (`cond_dim` > 0), an image (super-resolution,
#: colourisation: p(x | another image)), or a prefix (sequence models: p(continuation | prefix)).
CONDITIONS = ("nothing", "class", "vector", "image", "prefix")
#: The value types a model can declare (`Model.value_type`).
VALUE_TYPES = ("binary", "categorical", "continuous")


def models_sequences(model: Model | type[Model]) -> bool:
    """Whether a model (or model class) scores variable-length token streams: it declares
    `event_shape == (None,)` (sequence models; their `cond` is a prefix)."""
    return tuple(model.event_shape) == (None,)


class Model(nn.Module):
    """Base class: a density over events of `event_shape` with values of `value_type`.

    A model *declares* what it is through the capabilities below (class attributes, overridden by
    an instance where they depend on constructor arguments); training, evaluation, tasks and the
    CLI ask these and never probe other attributes or check classes. Subclasses call
    `self.remember_config(locals())` in `__init__` so that `save`/`load` can rebuild them from
    JSON alone. A model keeps no per-call state in attributes, and `log_prob` is the same in train
    and eval mode, with or without gradients.
    """

    registry_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every constructor's arguments are checked before its body runs (`_checked_init`)."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]

    # -- declared capabilities ---------------------------------------------------------------------
    #: "binary", "categorical" (K-ary: text, 8-bit pixels, tabular codes) or "continuous"
    value_type: str = "binary"
    #: K for discrete values in [0, K); 0 for continuous models
    num_values: int = 2
    #: shape of one example; (None,) for variable-length sequences (x is (batch, T), any T >= 1)
    event_shape: tuple[int | None, ...] = ()
    #: (H, W) or (H, W, C) when the event is an image stored flat (channel fastest), else None
    image_shape: tuple[int, ...] | None = None
    #: whether `log_prob` is exact (False: a documented estimate, e.g. the VAE's importance bound)
    exact_log_prob: bool = True
    #: whether `sample(given=, mask=)` draws from the exact conditional for *any* mask (Gaussian,
    #: Bayesian network); autoregressive models are exact for masks that put the observed
    #: dimensions first in `sampling_order()` only
    exact_completion: bool = False
    #: one of CONDITIONS: what `cond` is for this model
    conditioned_on: str = "nothing"
    #: number of classes of a class-conditional model (conditioned_on == "class"), else 0
    num_classes: int = 0
    #: the keyword of `log_prob` that scores the uniform mixture of the first N members of an
    #: ensemble sharing one set of weights ("num_masks": MADE/RNADE; "num_orderings": deep NADE),
    #: or None for a single model
    ensemble_keyword: ClassVar[str | None] = None
    #: how many members that ensemble has (the default of that keyword); 1 for a single model
    ensemble_size: int = 1
    #: True for a Bayesian network: CPDs on a DAG whose structure it exposes, so that exact
    #: queries and the KL divergence between two of them run by variable elimination
    directed_graph: ClassVar[bool] = False
    #: True when the model compiles its own kernels (NADE's blocked kernels): training then calls
    #: `set_compiled` instead of wrapping `training_log_prob` in torch.compile
    compiles_itself: ClassVar[bool] = False

    @property
    def class_conditional(self) -> bool:
        """True for models of p(x | class): training and evaluation pass the labels as `cond`."""
        return self.conditioned_on == "class"

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """Constructor arguments of a tiny instance (a handful of dimensions, tiny layers) on which
        the contract test suite checks the model; every registered model supplies one."""
        raise ChainruleError(
            f"model {cls.registry_name or cls.__name__!r} supplies no tiny_config(): add a classmethod"
            " returning the constructor arguments of a tiny instance for the contract test suite"
        )

    def sampling_order(self) -> list[int] | None:
        """The single order in which the chain rule factorises `log_prob` (autoregressive models),
        or None (no single order: non-autoregressive models and mixtures of orders)."""
        return None

    def values_per_dimension(self) -> list[int] | None:
        """How many values each dimension takes (discrete models with a fixed event size), or
        None (continuous or variable-length). Models whose dimensions differ in cardinality (a
        Bayesian network's variables) override it; enumeration checks use it."""
        if self.value_type == "continuous" or not self.event_shape or None in self.event_shape:
            return None
        return [self.num_values] * math.prod(self.event_shape)

    def check_cond(self, cond: object) -> None:
        """Refuse a condition given to an unconditional model instead of ignoring it (conditional
        models override this with their own checks of `cond`)."""
        if cond is not None and self.conditioned_on == "nothing":
            raise ChainruleError(
                f"model {self.registry_name!r} is unconditional (conditioned on nothing): it takes no"
                f" cond, got {type(cond).__name__}"
            )

    def condition_from(self, x: torch.Tensor) -> torch.Tensor:
        """The condition an image-conditioned model (conditioned_on == "image") derives from its own
        images x: their low-resolution version (super-resolution), their greyscale version
        (colourisation). Such models override it; every other model refuses."""
        raise ChainruleError(
            f"model {self.registry_name!r} is conditioned on {self.conditioned_on}, not on an image derived"
            " from x"
        )

    def check_sample_request(self, n: object, cond: object, generator: object) -> int:
        """The checks every `sample` starts with: n a positive int, `generator` a torch.Generator
        (or None), `cond` acceptable to this model. Returns n."""
        check_num_samples(n)
        check_generator(generator)
        self.check_cond(cond)
        return n

    def on_train_step(self, step: int) -> None:
        """Called by the trainer before training step `step` (e.g. an order-agnostic ensemble
        moves to its next member). The default does nothing."""

    def set_compiled(self, enabled: bool) -> None:
        """Switch the model's own compiled kernels on or off (only if `compiles_itself`)."""
        if enabled and not self.compiles_itself:
            raise ChainruleError(f"model {self.registry_name!r} has no compiled kernels of its own")

    def capabilities(self) -> dict[str, Any]:
        """The declared capabilities as a JSON-ready dict (what `chainrule info` prints)."""
        return {
            "model": self.registry_name,
            "value_type": self.value_type,
            "num_values": self.num_values,
            "event_shape": list(self.event_shape),
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "exact_log_prob": self.exact_log_prob,
            "exact_completion": self.exact_completion,
            "conditioned_on": self.conditioned_on,
            "num_classes": self.num_classes,
            "ensemble_keyword": self.ensemble_keyword,
            "ensemble_size": self.ensemble_size,
            "directed_graph": self.directed_graph,
        }

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

    def training_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """What maximum-likelihood training maximises per example: `log_prob`, or a bound on it
        for models whose likelihood is intractable (the VAE's ELBO)."""
        return self.log_prob(x, cond)

    def validation_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The per-example score used for early stopping (cheaper stand-ins are allowed)."""
        return self.log_prob(x, cond)

    def warm_start_state(self, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This model's state dict with a saved model's values (`source`, its state dict) where
        they fit, for a warm start: every parameter must be there with the same shape; buffers
        are taken where their shapes agree, as they can define what the weights mean (MADE's
        mask degrees) and keep their own otherwise. Load the result with `load_state_dict`."""
        state = self.state_dict()
        parameters = {name for name, _ in self.named_parameters()}
        for name, own in state.items():
            theirs = source.get(name)
            fits = theirs is not None and theirs.shape == own.shape
            if name in parameters and not fits:
                raise ChainruleError(f"parameter {name} is missing or has another shape")
            if fits:
                state[name] = theirs.to(device=own.device, dtype=own.dtype)
        return state

    def num_parameters(self) -> int:
        """Number of trainable scalars (masked-out weights included, as stored)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def num_free_parameters(self) -> int:
        """Number of scalars that can change `log_prob`: the stored ones less the weights that a
        layer's fixed `mask` buffer (masked linear maps and convolutions) always zeroes. FVSBN stores
        D x D weights, of which D(D-1)/2 are free; a model without masks has none to leave out."""
        zeroed = 0
        for module in self.modules():
            mask = dict(module.named_buffers(recurse=False)).get("mask")
            weight = dict(module.named_parameters(recurse=False)).get("weight")
            if mask is None or weight is None or not weight.requires_grad:
                continue
            if mask.shape == weight.shape:
                zeroed += int((mask == 0).sum())
        return self.num_parameters() - zeroed
