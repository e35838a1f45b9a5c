"""A plain autoencoder trained like MADE: the course's counter-example, *not* a generative model.

Same MLP shape as MADE (ReLU hidden layers, one logit per input), but no masks: output i sees all
of x, x_i included. Trained to maximise sum_i log Bernoulli(x_i; sigmoid(out_i(x))), exactly the
loss MADE minimises, it learns to copy its input: its `score` goes to 0 nats on training data, and
exp(score) summed over all 2^D binary vectors is far above 1, so the score is no log-likelihood and
the network defines no distribution to sample from. MADE's masks (output i sees only inputs before
i in the order) turn the same network into a chain of normalised conditionals.

For real-valued inputs, `loss="squared"` is the notes' other autoencoder: linear outputs x̂ and
the score -sum_i (x_i - x̂_i)^2. With room to spare it copies too; through a narrow bottleneck it
learns a compressed code (one hidden unit on 2-D data: a principal direction), which is what an
autoencoder is for, and still no density.

It is deliberately not a `Model` and not in the registry: it breaks the one contract.
`dependency_matrix` is the Jacobian test that tells the two apart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.validation import as_batch, check_discrete, check_finite

#: reconstruction losses: Bernoulli log-likelihood of binary x, squared error of real x
LOSSES = ("bernoulli", "squared")


class Autoencoder(nn.Module):
    """Unmasked MLP from x to dim outputs with ReLU hidden layers `hidden`: Bernoulli logits of
    x in {0,1}^dim (`loss="bernoulli"`), or reconstructions of real x (`loss="squared"`)."""

    def __init__(self, dim: int, hidden: list[int] | int = 64, loss: str = "bernoulli"):
        super().__init__()
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        if dim < 1 or not hidden or min(hidden) < 1:
            raise ChainruleError("Autoencoder needs dim >= 1 and hidden layers of positive width")
        if loss not in LOSSES:
            raise ChainruleError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
        self.dim, self.loss = int(dim), loss
        sizes = [self.dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(hidden[-1], self.dim)

    def conditioner(self, x: torch.Tensor) -> torch.Tensor:
        """The D outputs (B, D) (logits, or reconstructions), each computed from the whole input:
        what MADE's masks forbid."""
        return self.out(self._code(x))

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
        return x

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Shape (B,): sum_i log Bernoulli(x_i; sigmoid(out_i(x))), the reconstruction
        log-likelihood MADE's `log_prob` would compute, or with `loss="squared"` minus the squared
        error sum_i (x_i - out_i(x))^2. Not a log-probability: it is not normalised."""
        x = as_batch(x, (self.dim,))
        if self.loss == "squared":
            check_finite(x, "x")
        else:
            check_discrete(x, 2)
        x = x.to(self.out.weight.dtype)
        out = self.conditioner(x)
        if self.loss == "squared":
            return -((x - out) ** 2).sum(-1)
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (B, hidden[-1]): the learned code e(x)."""
        x = as_batch(x, (self.dim,))
        check_finite(x, "x")
        return self._code(x.to(self.out.weight.dtype))


def dependency_matrix(
    conditioner: Callable[[torch.Tensor], torch.Tensor], dim: int, points: int = 16, seed: int = 0
) -> torch.Tensor:
    """(dim, dim) bool: entry [i, j] is True when output i of `conditioner` depends on input j,
    read off the Jacobian at `points` random inputs in [0, 1]^dim (any non-zero entry counts).
    An autoregressive conditioner in the natural order has no True on or above the diagonal."""
    g = torch.Generator().manual_seed(seed)
    dtype = torch.get_default_dtype()
    found = torch.zeros(dim, dim, dtype=torch.bool)
    for _ in range(points):
        x = torch.rand(1, dim, generator=g, dtype=dtype)
        jac = torch.autograd.functional.jacobian(lambda v: conditioner(v)[0].reshape(dim, -1), x)
        found |= (jac.reshape(dim, -1, dim) != 0).any(1).cpu()
    return found
