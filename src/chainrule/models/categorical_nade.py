"""Categorical NADE: NADE with softmax conditionals over K values (for K-ary data such as
17-level digits).

a_1 = c,  a_{d+1} = a_d + W[:, d, x_d]     (tied input weights: one H-vector per (dim, value))
h_d = sigmoid(a_d),  p(x_d = v | x_<d) = softmax_v(b_d + V_d h_d)   with V_d of shape (K, H).
Likelihood and sampling cost O(D H K), like binary NADE's O(D H) per value.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import FixedOrderModel
from chainrule.models.base import register_model
from chainrule.nn import exclusive_cumsum, init_uniform_


@register_model("categorical-nade")
class CategoricalNADE(FixedOrderModel):
    """K-ary NADE with `hidden` sigmoid units; `order` permutes the dimensions."""

    def __init__(
        self,
        dim: int,
        num_values: int,
        hidden: int = 100,
        order: list[int] | None = None,
        image_shape: list[int] | None = None,
        seed: int = 0,
    ):
        super().__init__(dim, num_values, image_shape)
        self.remember_config(locals())
        if num_values < 2 or hidden < 1:
            raise ChainruleError(f"need num_values >= 2 and hidden >= 1, got {num_values} and {hidden}")
        self.hidden = int(hidden)
        self.set_fixed_order(order)
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(init_uniform_(torch.empty(dim, num_values, hidden), dim, generator=g))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(init_uniform_(torch.empty(dim, num_values, hidden), hidden, generator=g))
        self.b = nn.Parameter(torch.zeros(dim, num_values))

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4, "num_values": 3, "hidden": 5}

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        xo = self.to_order(x).long()  # (B, D) values in model order
        positions = torch.arange(self.dim, device=x.device)
        contrib = self.W[positions, xo]  # (B, D, H): W[:, t, x_t]
        h = torch.sigmoid(self.c + exclusive_cumsum(contrib))
        logits = torch.einsum("bdh,dkh->bdk", h, self.V) + self.b
        return self.from_order(logits)

    def _fast_sample(self, x, obs, cond, draw):
        a = self.c.expand(x.shape[0], -1).clone()
        for t, d in enumerate(self.order):
            logits = torch.sigmoid(a) @ self.V[t].T + self.b[t]
            self._place(x, d, draw(logits, d), obs)
            a += self.W[t, x[:, d].long()]
        return x
