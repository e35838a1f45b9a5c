"""What the contract checks share: the violation error, building a tiny model, example inputs
and conditions, and enumeration of a discrete model's configurations.

Everything here asks the model's *declared* capabilities (`value_type`, `values_per_dimension()`,
`event_shape`, `conditioned_on`, ...), never its class or its attributes.
"""

from __future__ import annotations

import inspect
import itertools
import math

import torch

from chainrule.errors import ChainruleError
from chainrule.models.base import MODEL_REGISTRY, Model, models_sequences

#: the most configurations an enumeration check sums over
MAX_CONFIGURATIONS = 5000
#: the sequence length whose sequences are enumerated for variable-length models, at most
MAX_SEQUENCE_LENGTH = 3


class ContractViolation(AssertionError):
    """A model breaks the one contract; the message names the model and the check."""


class NotApplicable(Exception):  # noqa: N818 - a reason, not an error
    """A check does not apply to a model, by the model's declared capabilities (the message says why)."""


def name_of(model: Model) -> str:
    """The model's registry name (or class name) for messages."""
    return model.registry_name or type(model).__name__


def fail(model: Model, check: str, message: str) -> ContractViolation:
    """The violation to raise: `model 'fvsbn' fails check_x: ...`."""
    return ContractViolation(f"model {name_of(model)!r} fails {check}: {message}")


def model_class(model: str | type[Model]) -> type[Model]:
    """The registered class of a name, or the class itself."""
    if isinstance(model, str):
        if model not in MODEL_REGISTRY:
            raise ContractViolation(f"unknown model {model!r}; registered: {sorted(MODEL_REGISTRY)}")
        return MODEL_REGISTRY[model]
    return model


def tiny_model(model: str | type[Model], seed: int = 0) -> Model:
    """Build the tiny instance `cls.tiny_config()` describes, in eval mode, with its parameters
    moved off their initial values (many models start at zero, where every check passes
    trivially) unless its log_prob is a declared estimate, whose accuracy needs the initial
    encoder/decoder agreement."""
    cls = model_class(model)
    name = cls.registry_name or cls.__name__
    tiny = getattr(cls, "tiny_config", None)  # the one attribute the suite requires of a class
    try:
        if tiny is None:
            raise ChainruleError("no tiny_config()")
        config = tiny()
    except ChainruleError as e:
        raise ContractViolation(
            f"model {name!r} has no tiny_config(): every registered model class must supply a"
            f" classmethod tiny_config() -> dict of constructor arguments for a tiny instance ({e})"
        ) from None
    torch.manual_seed(seed)
    instance = cls(**config)
    if instance.exact_log_prob:  # an estimate (the VAE's) needs its encoder matched to its decoder
        perturb_parameters(instance, seed)
    return instance.eval()


@torch.no_grad()
def perturb_parameters(model: Model, seed: int = 0, scale: float = 0.5) -> None:
    """Add seeded Gaussian noise to every trainable floating-point parameter (not to buffers)."""
    g = torch.Generator().manual_seed(seed + 1)
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))


def device_of(model: Model) -> torch.device:
    """Where the model's parameters (or buffers) live; the CPU for a model with neither."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


def event_size(model: Model) -> int:
    """Values per example of a fixed-size model."""
    return math.prod(model.event_shape)


def takes(fn, argument: str) -> bool:
    """Whether callable `fn` accepts keyword `argument` (e.g. sample's `method`)."""
    return argument in inspect.signature(fn).parameters


def condition(model: Model, n: int, seed: int = 0) -> torch.Tensor | None:
    """A condition for `n` examples: class labels, vectors, or None (nothing, prefix)."""
    g = torch.Generator().manual_seed(seed)
    kind = model.conditioned_on
    if kind == "class":
        return torch.randint(0, model.num_classes, (n,), generator=g).to(device_of(model))
    if kind == "vector":
        dim = model.config().get("cond_dim")  # no declared cond shape yet: see the report
        if not dim:
            raise NotApplicable("a vector-conditioned model with no cond_dim in its config")
        return torch.randn(n, int(dim), generator=g).to(device_of(model))
    if kind == "image":  # the condition of random images, as the model derives it (condition_from)
        values = model.values_per_dimension()
        if values is None:
            raise NotApplicable("an image-conditioned model of continuous values")
        top = torch.tensor(values, dtype=torch.float64)
        x = torch.floor(torch.rand(n, len(values), generator=g, dtype=torch.float64) * top)
        return model.condition_from(x.to(device_of(model)))
    return None


def other_condition(model: Model, cond: torch.Tensor) -> torch.Tensor:
    """A condition that differs from `cond` in every example."""
    if model.conditioned_on == "class":
        return (cond + 1) % model.num_classes
    if model.conditioned_on == "image":  # the condition of all-dark images, or of all-bright ones
        values = torch.tensor(model.values_per_dimension(), dtype=cond.dtype, device=cond.device)
        dark = model.condition_from(torch.zeros(len(cond), len(values), dtype=cond.dtype, device=cond.device))
        bright = model.condition_from((values - 1).expand(len(cond), -1))
        return torch.where((cond == dark).all(1, keepdim=True), bright, dark)
    return cond + 1.0


def draw(model: Model, n: int, cond=None, seed: int = 0, length: int = 3, **kwargs) -> torch.Tensor:
    """`n` samples from the model with a seeded generator (sequences of `length` tokens)."""
    g = torch.Generator(device=device_of(model)).manual_seed(seed)
    if models_sequences(model):
        kwargs["length"] = length
    with torch.no_grad():
        return model.sample(n, cond, generator=g, **kwargs)


def sequence_length(num_values: int) -> int:
    """The longest length <= MAX_SEQUENCE_LENGTH whose sequences can all be enumerated."""
    t = 1
    while t < MAX_SEQUENCE_LENGTH and num_values ** (t + 1) <= MAX_CONFIGURATIONS:
        t += 1
    return t


def configurations(model: Model, length: int | None = None) -> torch.Tensor:
    """Every configuration (N, D) of an enumerable discrete model, as floats on its device (all
    sequences of `length` tokens for variable-length models)."""
    if models_sequences(model):
        sizes = [model.num_values] * (length or sequence_length(model.num_values))
    else:
        sizes = model.values_per_dimension()
    if sizes is None:
        raise NotApplicable("not a discrete model of enumerable support")
    total = math.prod(sizes)
    if total > MAX_CONFIGURATIONS:
        raise ContractViolation(
            f"model {name_of(model)!r}: its tiny_config has {total} configurations; make it enumerable"
            f" (at most {MAX_CONFIGURATIONS}: fewer dimensions or values)"
        )
    grid = torch.tensor(list(itertools.product(*[range(k) for k in sizes])), dtype=torch.float32)
    return grid.reshape(total, len(sizes)).to(device_of(model))


def log_prob_in_chunks(model: Model, x: torch.Tensor, cond=None, chunk: int = 1024) -> torch.Tensor:
    """log_prob over many rows without a large batch, gradients off; cond is one row, repeated."""
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            rows = x[start : start + chunk]
            c = None if cond is None else cond[:1].expand(rows.shape[0], *cond.shape[1:])
            out.append(model.log_prob(rows, c).double())
    return torch.cat(out)


def seeded(seed: int = 0) -> None:
    """Reset the global random stream (for models whose log_prob is a stochastic estimate)."""
    torch.manual_seed(seed)
