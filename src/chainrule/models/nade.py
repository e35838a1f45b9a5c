"""NADE: neural autoregressive density estimator with tied input weights (Larochelle & Murray 2011).

h_i = sigmoid(c + W[:, <i] x_<i),  p(x_i = 1 | x_<i) = sigmoid(b_i + V_i · h_i).
Because the pre-activation of h_{i+1} is that of h_i plus one column W[:, i] x_i, both
likelihood and sampling cost O(n·d) instead of O(n²·d).
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.models.autoregressive import FixedOrderModel
from chainrule.models.base import register_model
from chainrule.models.nade_kernels import nade_logits
from chainrule.nn import init_uniform_


@register_model("nade")
class NADE(FixedOrderModel):
    """Binary NADE with `hidden` sigmoid units; `order` permutes the dimensions. It compiles its
    own blocked kernels (`set_compiled`) instead of having `training_log_prob` compiled whole."""

    compiles_itself = True

    def __init__(
        self,
        dim: int,
        hidden: int = 500,
        order: list[int] | None = None,
        image_shape: list[int] | None = None,
    ):
        super().__init__(dim, 2, image_shape)
        self.remember_config(locals())
        self.hidden = int(hidden)
        self.set_fixed_order(order)
        self.W = nn.Parameter(init_uniform_(torch.empty(hidden, dim), dim))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(init_uniform_(torch.empty(dim, hidden), hidden))
        self.b = nn.Parameter(torch.zeros(dim))
        self._compiled = False  # set_compiled(True) fuses the block kernels with torch.compile
        self.block: int | None = None  # None: chosen by batch and hidden size (nade_kernels.plan)

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 6, "hidden": 5}

    def set_compiled(self, enabled: bool) -> None:
        """Fuse (True) or not (False) the blocked kernels with torch.compile; same results."""
        self._compiled = bool(enabled)

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        logits = nade_logits(self.to_order(x), self.W, self.c, self.V, self.b, self.block, self._compiled)
        return self.from_order(logits)

    def _fast_sample(self, x, obs, cond, draw):
        """O(n·d) per dimension: one matrix-vector product for the logit, one rank-1 update of the
        pre-activations. Few, fused ops per step (it is dispatch-bound at small n): addmv for the
        logit, sigmoid into one buffer, the input weights as contiguous rows."""
        a = self.c.expand(x.shape[0], -1).clone()
        h = torch.empty_like(a)
        w_rows = self.W.t().contiguous()  # row t: the weights dimension t feeds to the hidden units
        for t, d in enumerate(self.order):
            value = draw(torch.addmv(self.b[t], torch.sigmoid(a, out=h), self.V[t]), d)
            if obs is not None:
                value = torch.where(obs[:, d], x[:, d], value)
            x[:, d] = value
            a.addr_(value, w_rows[t])
        return x
