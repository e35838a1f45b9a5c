"""RNADE: real-valued NADE with mixture-of-Gaussians conditionals (Uria, Murray & Larochelle 2013).

a_1 = c,  a_{d+1} = a_d + W[:, d] x_d          (tied input weights, as in NADE: O(DH) in all)
h_d = sigmoid(rho_d a_d)                        (rho_d: the paper's activation rescaling)
p(x_d | x_<d) = sum_k alpha_dk N(x_d; mu_dk, sigma_dk),  [alpha, mu, log sigma]_d = V_d^T h_d + b_d
with per-dimension output layers V_d (H x 3K). The head floors every sigma at `min_scale`.
With `uniform_weights` the mixture weights are fixed at alpha_dk = 1/K, as the course notes write
RNADE: V_d is H x 2K (means and scales only) and the weight logits are constant zeros.

Parameters belong to dimensions, not positions, so the same weights define a density for every
order. With `num_orders` > 1 (order-agnostic training, Uria et al. 2014) each minibatch uses the
next of `num_orders` orders (the first is `order`, the rest random with `seed`), and evaluation
is the uniform mixture over them: an ensemble of orders sharing one set of parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.distributions import GaussianMixture
from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import by_dimension, check_order
from chainrule.models.base import register_model
from chainrule.models.ensemble import MaskEnsembleModel
from chainrule.nn import exclusive_cumsum, init_uniform_


@register_model("rnade")
class RNADE(MaskEnsembleModel):
    """Real-valued vectors; `hidden` sigmoid units, `components` Gaussians per conditional."""

    def __init__(
        self,
        dim: int,
        hidden: int = 50,
        components: int = 5,
        order: list[int] | None = None,
        min_scale: float = 1e-3,
        num_orders: int = 1,
        seed: int = 0,
        uniform_weights: bool = False,
    ):
        super().__init__(dim, head=GaussianMixture(components, min_scale))
        self.remember_config(locals())
        if hidden < 1:
            raise ChainruleError(f"hidden must be positive, got {hidden}")
        self.hidden, self.components = int(hidden), int(components)
        self.uniform_weights = bool(uniform_weights)
        parts = 2 if self.uniform_weights else 3  # [weight logits,] means, log scales
        if num_orders < 1:
            raise ChainruleError(f"num_orders must be >= 1, got {num_orders}")
        g = torch.Generator().manual_seed(seed)
        first = torch.tensor(check_order(order, dim))
        orders = [first] + [torch.randperm(dim, generator=g) for _ in range(num_orders - 1)]
        self.register_buffer("orders", torch.stack(orders))
        self.num_masks = int(num_orders)
        self.W = nn.Parameter(init_uniform_(torch.empty(hidden, dim), dim, generator=g))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.rho = nn.Parameter(torch.ones(dim))
        self.V = nn.Parameter(
            init_uniform_(torch.empty(dim, hidden, parts * components), hidden, generator=g)
        )
        # initial conditionals: equal weights, means spread over [-1, 1], unit-ish scales
        b = torch.zeros(dim, parts, components)
        b[:, parts - 2] = torch.linspace(-1, 1, components) if components > 1 else 0.0
        self.b = nn.Parameter(b.flatten(1))
        self.use_mask(0)

    def _load_mask(self, m: int) -> None:
        """Members differ only in their order, read from `orders[mask_index]` by `perm`."""

    @property
    def perm(self) -> torch.Tensor:
        """The order in use: perm[t] is the dimension generated at step t."""
        return self.orders[self.mask_index]

    def order_of(self, m: int) -> list[int]:
        return self.orders[m].tolist()

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 2, "hidden": 6, "components": 2, "num_orders": 2, "seed": 1}

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        p = self.perm
        contrib = x[:, p].unsqueeze(-1) * self.W.T[p]  # (B, D, H), positions in order p
        h = torch.sigmoid(self.rho[p].unsqueeze(-1) * (self.c + exclusive_cumsum(contrib)))
        params = self.with_weights(torch.einsum("bdh,dhp->bdp", h, self.V[p]) + self.b[p])
        return by_dimension(params, p)

    def with_weights(self, out: torch.Tensor) -> torch.Tensor:
        """The head's [weight logits, means, log scales] from the output layer's (..., 2K or 3K):
        zero logits (weights 1/K) put in front when the weights are fixed."""
        if not self.uniform_weights:
            return out
        return torch.cat([out.new_zeros(*out.shape[:-1], self.components), out], -1)

    def _fast_sample(self, x, obs, cond, draw):
        a = self.c.expand(x.shape[0], -1).clone()
        for d in self.member_order():
            params = self.with_weights(torch.sigmoid(self.rho[d] * a) @ self.V[d] + self.b[d])
            self._place(x, d, draw(params, d), obs)
            a.addr_(x[:, d], self.W[:, d])
        return x
