"""Autoregressive model = conditioner (network with the autoregressive property) + head.

Subclasses implement `conditioner(x) -> params` (params for every dimension, computed from
the dimensions before it in `order`) and, optionally, `_fast_sample`, which must consume the
random stream exactly like `_generic_sample` (one `_draw` call per dimension, in order). `_draw`
is `head.sample` unless `decode` installs another rule (greedy purification, for example).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chainrule.devices import model_device
from chainrule.distributions import Bernoulli, Categorical, Head
from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.validation import as_batch, check_num_samples


def make_head(num_values: int) -> Head:
    """Bernoulli for binary data, Categorical for K-ary data."""
    return Bernoulli() if num_values == 2 else Categorical(num_values)


def check_order(order: list[int] | None, dim: int) -> list[int]:
    """Validate a permutation of range(dim); None means the natural order."""
    if order is None:
        return list(range(dim))
    order = [int(i) for i in order]
    if sorted(order) != list(range(dim)):
        raise ChainruleError(f"order must be a permutation of 0..{dim - 1}")
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
    def conditioner(self, x: torch.Tensor) -> torch.Tensor:
        """Params (B, D) for binary heads or (B, D, P) for heads with P numbers per dimension."""
        raise NotImplementedError

    def sampling_order(self) -> list[int]:
        """The order in which dimensions are generated."""
        return list(range(self.dim))

    def _fast_sample(self, x, mask, given, generator) -> torch.Tensor | None:
        """Work-reusing sampler; return None where a model has none."""
        return None

    # -- the contract ------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Check shape, finiteness and value range; return (B, D) in the model's dtype on its device
        (inputs held on the CPU are scored by a model on a GPU)."""
        x = as_batch(x, self.event_shape, what)
        self.head.validate(x, what)
        return x.to(device=model_device(self), dtype=self._dtype())

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log-likelihood in nats, shape (B,): the sum over dimensions of the head's
        log p(x_i | x_<i), all computed in one conditioner pass."""
        return self.log_prob_terms(x, cond).sum(-1)

    def log_prob_terms(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The chain-rule terms log p(x_i | x_<i) of every dimension, shape (B, D)."""
        if cond is not None:
            raise ChainruleError(f"model {self.registry_name!r} is unconditional: it takes no cond")
        x = self.prepare(x)
        return self.head.log_prob(self.conditioner(x), x)

    def _dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.get_default_dtype()

    def _start(self, n, given, mask):
        """Initial canvas and observed-mask for sampling/completion, on the model's device (`given`
        and `mask` may be held elsewhere, e.g. on the CPU)."""
        device, dtype = next(self.parameters()).device, self._dtype()
        if given is None and mask is None:
            return torch.zeros(n, self.dim, device=device, dtype=dtype), None
        if given is None or mask is None:
            raise ChainruleError("completion needs both `given` and `mask`")
        given = as_batch(given, self.event_shape, "given").to(device=device, dtype=dtype)
        mask_t = torch.as_tensor(mask, device=device)
        if mask_t.numel() == self.dim:
            mask_t = mask_t.reshape(1, self.dim).expand(given.shape[0], self.dim)
        elif mask_t.numel() == given.shape[0] * self.dim:
            mask_t = mask_t.reshape(given.shape[0], self.dim)
        else:
            raise ChainruleError(
                f"mask has shape {tuple(mask_t.shape)}; expected {self.event_shape} or"
                f" ({given.shape[0]}, {self.dim}) like `given`"
            )
        mask_t = mask_t.bool()
        if n != given.shape[0]:
            raise ChainruleError(f"n={n} but `given` holds {given.shape[0]} examples")
        observed = torch.where(mask_t, given, torch.zeros_like(given))
        self.head.validate(observed, "given (observed part)")
        return observed.clone(), mask_t

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
        check_num_samples(n)
        if method not in ("fast", "generic"):
            raise ChainruleError(f"method must be 'fast' or 'generic', got {method!r}")
        x, obs = self._start(n, given, mask)
        with torch.no_grad():
            out = self._fast_sample(x, obs, given, generator) if method == "fast" else None
            if out is None:
                out = self._generic_sample(x, obs, generator)
        return out

    def _generic_sample(self, x, obs, generator) -> torch.Tensor:
        """Reference sampler: one full conditioner pass per dimension."""
        for d in self.sampling_order():
            params = self.conditioner(x)[:, d]
            self._place(x, d, self._draw(params, d, generator), obs)
        return x

    def _draw(self, params: torch.Tensor, d: int, generator: torch.Generator | None) -> torch.Tensor:
        """The value of dimension d given its conditional's params: a draw from the head, or the
        rule installed by `decode`."""
        chooser = getattr(self, "_chooser", None)
        return self.head.sample(params, generator) if chooser is None else chooser(params, d)

    def decode(
        self,
        n: int,
        choose: Callable[[torch.Tensor, int], torch.Tensor],
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        method: str = "fast",
    ) -> torch.Tensor:
        """Walk the order like `sample`, but set each unobserved dimension d to `choose(params, d)`
        (params of its conditional given the values chosen so far), e.g. the most likely value
        within a window: PixelDefend's purification. Uses the fast sampler's caches."""
        self._chooser = choose
        try:
            return self.sample(n, given=given, mask=mask, method=method)
        finally:
            self._chooser = None

    @staticmethod
    def _place(x: torch.Tensor, d: int, value: torch.Tensor, obs: torch.Tensor | None) -> None:
        """Write a drawn value into column d unless that entry is observed."""
        x[:, d] = value if obs is None else torch.where(obs[:, d], x[:, d], value)
