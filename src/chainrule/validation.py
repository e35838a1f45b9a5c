"""Input checks shared by all models: shape, finiteness and value range, with clear messages."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from chainrule.errors import ChainruleError


def as_batch(x: torch.Tensor, event_shape: tuple[int, ...], what: str = "x") -> torch.Tensor:
    """Return `x` as a float tensor of shape (B, *event_shape), accepting any reshape-compatible
    trailing shape (e.g. (B, 28, 28) for a 784-dimensional model)."""
    if not isinstance(x, torch.Tensor):
        raise ChainruleError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() and x.shape[0] and x.shape[1:] == event_shape and not x.dtype.is_complex:
        return x  # already (B, *event_shape): the common case, on every training batch
    if x.dtype.is_complex:
        raise ChainruleError(f"{what} is a complex tensor; real values are expected")
    size = math.prod(event_shape)
    if x.dim() < 1 or x.shape[0] == 0:
        raise ChainruleError(f"{what} is empty or has no batch dimension (shape {tuple(x.shape)})")
    if math.prod(x.shape[1:]) != size:
        raise ChainruleError(
            f"{what} has shape {tuple(x.shape)}; expected (batch, {', '.join(map(str, event_shape))})"
            f" or any (batch, ...) with {size} values per example"
        )
    return x.reshape(x.shape[0], *event_shape)


#: True inside `values_checked_upstream`: value checks pass without looking (a plain global, not a
#: context variable, so that torch.compile guards on it instead of breaking the graph)
_values_checked_upstream = False


@contextmanager
def values_checked_upstream() -> Iterator[None]:
    """Within this block `check_finite` and `check_discrete` pass without looking at the values:
    for training steps on a dataset whose every value was checked once before training began
    (`chainrule.training.objectives.check_dataset_values`), where a check per batch would only
    repeat that work (5-15 % of a small model's step). Shapes are still checked."""
    global _values_checked_upstream
    before, _values_checked_upstream = _values_checked_upstream, True
    try:
        yield
    finally:
        _values_checked_upstream = before


def check_finite(x: torch.Tensor, what: str = "x") -> None:
    """Refuse NaN or infinite values, which would silently poison a likelihood."""
    if _values_checked_upstream:
        return
    if x.is_floating_point() and torch.compiler.is_compiling():
        torch._assert_async(torch.isfinite(x).all(), f"{what} contains NaN or infinite values")
        return
    if x.is_floating_point() and not torch.isfinite(x).all():
        n = int((~torch.isfinite(x)).sum())
        raise ChainruleError(f"{what} contains {n} NaN or infinite value(s)")


def check_discrete(x: torch.Tensor, num_values: int, what: str = "x") -> None:
    """Refuse values that are not integers in [0, num_values). Binary floats take one cheap test
    (x is 0 or 1, which NaN and infinities fail too), as it runs on every training batch."""
    if _values_checked_upstream:
        return
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    binary_float = num_values == 2 and x.is_floating_point()
    # x - x*x is 0 exactly at 0 and 1 and nonzero (or NaN) anywhere else, NaN and inf included:
    # two passes instead of the three of the comparisons below
    if (
        binary_float
        and not torch.compiler.is_compiling()
        and not torch.count_nonzero(torch.addcmul(x, x, x, value=-1))
    ):
        return
    if binary_float:
        bad = (x != 0) & (x != 1)
    else:
        bad = (x < 0) | (x >= num_values)
        if x.is_floating_point() or x.is_complex():
            bad = bad | (x != torch.floor(x))
    if torch.compiler.is_compiling():
        # no graph break for a data-dependent branch: a failed check stops the compiled call, and
        # compiled_or_eager's eager re-run raises the ChainruleError below
        torch._assert_async(~bad.any(), f"{what} has values a {num_values}-valued head cannot score")
        return
    found = bool(bad.any())
    if found or x.is_complex():
        check_finite(x, what)
    if found:
        v = x[bad][0].item()
        kind = "binary (0 or 1)" if num_values == 2 else f"integers in [0, {num_values - 1}]"
        raise ChainruleError(
            f"{what} must be {kind}; found {v!r} ({int(bad.sum())} bad value(s)). "
            "Binarize or quantize the data first."
        )


def check_generation_options(temperature: object, top_k: object, top_p: object, batch: object) -> None:
    """Sampling options of `generate`: a finite temperature >= 0, an integer top_k >= 1, top_p in
    (0, 1], an integer batch >= 1 (bools, strings and NaN refused: they gave wrong tokens)."""

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
    ):
        raise ChainruleError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if temperature < 0:
        raise ChainruleError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and (not is_int(top_k) or top_k < 1):
        raise ChainruleError(f"top_k must be an integer >= 1, got {top_k!r}")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1
    ):
        raise ChainruleError(f"top_p must be a number in (0, 1], got {top_p!r}")
    if not is_int(batch) or batch < 1:
        raise ChainruleError(f"batch must be an integer >= 1, got {batch!r}")


#: The most samples one `sample` call draws (2**40, about 1.1e12): far beyond memory, well inside
#: what torch can index, so a larger n is refused here instead of overflowing in torch.
MAX_NUM_SAMPLES = 2**40


def check_num_samples(n: object) -> int:
    """A number of samples must be a positive int (not a bool, float or string), at most
    MAX_NUM_SAMPLES."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ChainruleError(f"number of samples must be a positive integer, got {n!r}")
    if n > MAX_NUM_SAMPLES:
        raise ChainruleError(
            f"number of samples must be at most 2**40 ({MAX_NUM_SAMPLES:,}) in one call, got {n:,};"
            " draw them in batches"
        )
    return n


def check_generator(generator: object) -> torch.Generator | None:
    """A `generator` argument must be a torch.Generator or None (an int seed, a NumPy generator
    or a generator's state tensor would fail deep inside torch)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ChainruleError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            " (for a seed use torch.Generator().manual_seed(seed))"
        )
    return generator


def as_cond(cond: object, device: torch.device | str | None = None) -> torch.Tensor:
    """A condition (class indices, vectors, images) as a real tensor on `device`: tensors, arrays
    and lists of numbers are accepted; strings, complex values and other objects are refused."""
    if not isinstance(cond, torch.Tensor):
        if isinstance(cond, str | bytes):
            raise ChainruleError(
                f"cond must be a tensor (class indices, vectors or images), got {type(cond).__name__}"
                f" {cond[:40]!r}"
            )
        try:
            cond = torch.as_tensor(cond)
        except (TypeError, ValueError, RuntimeError):
            raise ChainruleError(
                f"cond must be a tensor (class indices, vectors or images), got {type(cond).__name__}"
            ) from None
    if cond.is_complex():
        raise ChainruleError("cond is a complex tensor; real values are expected")
    return cond.to(device) if device is not None else cond


def check_completion(
    given: torch.Tensor | None,
    mask: torch.Tensor | None,
    n: int,
    event_shape: tuple[int | None, ...],
    validate: Callable[[torch.Tensor, str], None],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one completion check: (given, observed mask), both (n, *event_shape) (the mask bool).

    `mask` (True or 1 = observed) is one pattern of event shape (or D values) for every example,
    or one per example like `given`. The rule for unobserved entries: they are ignored whatever
    they hold (NaN included) and come back as 0; only the observed entries are checked, by
    `validate(values, what)` (a head's `validate`, `check_finite`, ...). A `None` in `event_shape`
    (variable-length sequences) takes its size from `given`."""
    if given is None or mask is None:
        raise ChainruleError("completion needs both `given` and `mask`")
    if not isinstance(given, torch.Tensor):
        raise ChainruleError(f"given must be a torch.Tensor, got {type(given).__name__}")
    if None in event_shape:
        if given.dim() != 1 + len(event_shape) or given.shape[0] == 0 or min(given.shape[1:], default=1) < 1:
            raise ChainruleError(f"given must have shape (batch, length), got {tuple(given.shape)}")
        event_shape = tuple(given.shape[1:])
    given = as_batch(given, event_shape, "given")
    if n != given.shape[0]:
        raise ChainruleError(f"n={n} but `given` holds {given.shape[0]} examples")
    obs = _as_mask(mask, given.shape, event_shape)
    given = given.to(device=device, dtype=dtype or (given.dtype if given.is_floating_point() else None))
    obs = obs.to(given.device)
    given = torch.where(obs, given, torch.zeros((), dtype=given.dtype, device=given.device))
    validate(given, "given (observed part)")
    return given, obs


def _as_mask(mask: object, batch_shape: torch.Size, event_shape: tuple[int, ...]) -> torch.Tensor:
    """A bool (B, *event_shape) observed-mask from a bool or 0/1 mask of event or batch size."""
    m = torch.as_tensor(mask)
    if m.dtype != torch.bool:
        if m.is_complex() or not ((m == 0) | (m == 1)).all():
            raise ChainruleError("mask must be boolean or hold only 0 and 1 (1 = observed)")
        m = m != 0
    size = math.prod(event_shape)
    if m.numel() == size:
        return m.reshape(1, *event_shape).expand(batch_shape)
    if m.numel() == math.prod(batch_shape):
        return m.reshape(batch_shape)
    raise ChainruleError(
        f"mask has shape {tuple(m.shape)}; expected {tuple(event_shape)} or"
        f" ({batch_shape[0]}, {', '.join(map(str, event_shape))}) like `given`"
    )
