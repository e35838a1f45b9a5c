"""Autoregressive model = conditioner (network with the autoregressive property) + head.

Subclasses implement `conditioner(x, cond=None) -> params` (params for every dimension, computed
from the dimensions before it in the order) and, optionally, `_fast_sample(x, obs, cond, draw)`,
which must consume the random stream exactly like `_generic_sample` (one `draw(params, d)` call
per dimension, in order) and keeps its caches in local variables, never on the model. `draw` is
the per-dimension choice rule, passed down as an argument: a draw from the head for `sample`, or
the caller's rule for `decode` (greedy purification, for example).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

import torch

from chainrule.devices import first_parameter, model_device
from chainrule.distributions import Bernoulli, Categorical, Head
from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.validation import as_batch, check_completion

#: The per-dimension choice rule of a sampler: (params of dimension d's conditional, d) -> value
Draw = Callable[[torch.Tensor, int], torch.Tensor]


def make_head(num_values: int) -> Head:
    """Bernoulli for binary data, Categorical for K-ary data."""
    return Bernoulli() if num_values == 2 else Categorical(num_values)


def check_order(order: list[int] | None, dim: int) -> list[int]:
    """Validate a permutation of range(dim) (a list, tuple, integer array or tensor); None means
    the natural order. Anything else is a ChainruleError naming the order and what it lacks."""
    if order is None:
        return list(range(dim))
    want = f"a permutation of 0..{dim - 1} (each of the {dim} dimensions once)"
    if isinstance(order, (str, bytes)) or not isinstance(order, Iterable):
        raise ChainruleError(f"order must be {want}, got {order!r}")
    items = list(order.tolist() if isinstance(order, torch.Tensor) else order)
    try:  # integers only: a bool, a float (even 1.0) or a string is a mistake, not an index
        order = [operator.index(i) for i in items if not isinstance(i, bool)]
    except TypeError:
        order = []
    if len(order) != len(items):
        raise ChainruleError(f"order must be {want}; its entries must be integers, got {items!r}")
    if sorted(order) != list(range(dim)):
        missing = sorted(set(range(dim)) - set(order))
        detail = f"{len(order)} entries" if len(order) != dim else f"missing {missing[:8]}"
        raise ChainruleError(f"order must be {want}, got {order!r} ({detail})")
    return order


class AutoregressiveModel(Model):
    """Exact `log_prob` by the chain rule; sampling and completion by walking `order`."""

    def __init__(
        self, dim: int, num_values: int = 2, image_shape: list[int] | None = None, head: Head | None = None
    ):
        """`head` defaults to Bernoulli (num_values 2) or Categorical (num_values K); a continuous
        head (GaussianMixture) makes the model real-valued (`num_values` 0)."""
        super().__init__()
        if dim < 1:
            raise ChainruleError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.head = head if head is not None else make_head(int(num_values))
        self.num_values = int(self.head.num_values)
        self.value_type = getattr(
            self.head, "value_type", "binary" if self.num_values == 2 else "categorical"
        )
        self.event_shape = (self.dim,)
        self.image_shape = tuple(image_shape) if image_shape else None

    # -- what subclasses provide -------------------------------------------------------------
    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Params (B, D) for binary heads or (B, D, P) for heads with P numbers per dimension."""
        raise NotImplementedError

    def sampling_order(self) -> list[int] | None:
        """The order in which dimensions are generated."""
        return list(range(self.dim))

    def member_order(self) -> list[int]:
        """The order the samplers walk: `sampling_order()`, or the order of the ensemble member
        in use (ensembles of several orders have no single `sampling_order`)."""
        return self.sampling_order()

    def _fast_sample(self, x: torch.Tensor, obs, cond, draw: Draw) -> torch.Tensor | None:
        """Work-reusing sampler; return None where a model has none."""
        return None

    # -- the contract ------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Check shape, finiteness and value range; return (B, D) in the model's dtype on its device
        (inputs held on the CPU are scored by a model on a GPU)."""
        x = as_batch(x, self.event_shape, what)
        self.head.validate(x, what)
        p = first_parameter(self)  # one lookup for both: it runs on every batch
        if p is None:
            return x.to(device=model_device(self), dtype=torch.get_default_dtype())
        return x.to(device=p.device, dtype=p.dtype)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log-likelihood in nats, shape (B,): the sum over dimensions of the head's
        log p(x_i | x_<i), all computed in one conditioner pass."""
        return self.head.log_prob_sum(*self.head_inputs(x, cond))

    def log_prob_terms(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The chain-rule terms log p(x_i | x_<i) of every dimension, shape (B, D)."""
        return self.head.log_prob(*self.head_inputs(x, cond))

    def head_inputs(
        self, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the head scores: the conditionals' parameters of every dimension, and x checked
        and converted (`prepare`)."""
        self.check_cond(cond)
        x = self.prepare(x)
        return self.conditioner(x, cond), x

    def _dtype(self) -> torch.dtype:
        p = first_parameter(self)
        return p.dtype if p is not None else torch.get_default_dtype()

    def _start(self, n, given, mask):
        """Initial canvas and observed-mask for sampling/completion, on the model's device (`given`
        and `mask` may be held elsewhere, e.g. on the CPU); the one completion check."""
        device, dtype = model_device(self), self._dtype()
        if given is None and mask is None:
            return torch.zeros(n, self.dim, device=device, dtype=dtype), None
        given, obs = check_completion(
            given, mask, n, self.event_shape, self.head.validate, dtype=dtype, device=device
        )
        return given.clone(), obs

    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        method: str = "fast",
    ) -> torch.Tensor:
        """Ancestral sampling; with `given`/`mask` (True = observed) the observed values are kept
        and the rest drawn from the model's conditionals in `sampling_order()` (exact when the
        observed dimensions come first in that order). `method` is "fast" or "generic"."""
        head = self.head

        def draw(params: torch.Tensor, d: int) -> torch.Tensor:
            return head.sample(params, generator)

        return self._walk(n, cond, given, mask, method, draw, generator)

    def decode(
        self,
        n: int,
        choose: Draw,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        method: str = "fast",
    ) -> torch.Tensor:
        """Walk the order like `sample`, but set each unobserved dimension d to `choose(params, d)`
        (params of its conditional given the values chosen so far), e.g. the most likely value
        within a window: PixelDefend's purification. Uses the fast sampler's caches."""
        return self._walk(n, cond, given, mask, method, choose, None)

    def _walk(self, n, cond, given, mask, method: str, draw: Draw, generator) -> torch.Tensor:
        """Check the request, then fill the canvas dimension by dimension with `draw`."""
        self.check_sample_request(n, cond, generator)
        if method not in ("fast", "generic"):
            raise ChainruleError(f"method must be 'fast' or 'generic', got {method!r}")
        x, obs = self._start(n, given, mask)
        return self._run(x, obs, cond, method, draw, generator)

    def _run(self, x, obs, cond, method: str, draw: Draw, generator) -> torch.Tensor:
        """The sampler itself on a checked canvas (`generator`: for ensembles' member draws)."""
        with torch.no_grad():
            out = self._fast_sample(x, obs, cond, draw) if method == "fast" else None
            if out is None:
                out = self._generic_sample(x, obs, cond, draw)
        return out

    def _generic_sample(self, x, obs, cond, draw: Draw) -> torch.Tensor:
        """Reference sampler: one full conditioner pass per dimension."""
        for d in self.member_order():
            params = self.conditioner(x, cond)[:, d]
            self._place(x, d, draw(params, d), obs)
        return x

    @staticmethod
    def _place(x: torch.Tensor, d: int, value: torch.Tensor, obs: torch.Tensor | None) -> None:
        """Write a drawn value into column d unless that entry is observed."""
        x[:, d] = value if obs is None else torch.where(obs[:, d], x[:, d], value)


def by_dimension(values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-position values (B, D, ...) computed in `order` (position t is dimension order[t]),
    put back by dimension."""
    return torch.empty_like(values).index_copy_(1, order, values)


class FixedOrderModel(AutoregressiveModel):
    """An autoregressive model with one order fixed at construction (`order`, default natural):
    FVSBN, NADE, untied and categorical NADE. The subclass calls `set_fixed_order` in `__init__`,
    runs its network on `to_order(x)` and returns `from_order(params)`; it samples in that order."""

    def set_fixed_order(self, order: list[int] | None) -> None:
        """Fix the order (checked by `check_order`; None: the natural one): `order`, the `perm`
        buffer that gathers x into it, and `natural` (no gathers at all in the natural order)."""
        self.order = check_order(order, self.dim)
        self.register_buffer("perm", torch.tensor(self.order), persistent=False)
        self.natural = self.order == list(range(self.dim))

    def to_order(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, D) with its dimensions in the fixed order."""
        return x if self.natural else x[:, self.perm]

    def from_order(self, params: torch.Tensor) -> torch.Tensor:
        """Per-dimension params computed in the fixed order (B, D, ...), put back by dimension."""
        return params if self.natural else by_dimension(params, self.perm)

    def sampling_order(self) -> list[int]:
        """The fixed order."""
        return self.order
