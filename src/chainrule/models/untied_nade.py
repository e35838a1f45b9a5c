"""NADE before its weights are tied: every conditional has a hidden layer of its own (the notes'
first NADE, h_i = sigmoid(A_i x_<i + c_i), p(x_i = 1 | x_<i) = sigmoid(alpha_i · h_i + b_i)).

These are D separate one-hidden-layer networks, so parameters and time grow as O(D² d) where tied
NADE (`nade`, one W shared by all conditionals) needs O(D d). All D hidden layers together are one
masked linear map from x to D blocks of d units, block i seeing x_<i, so `log_prob` is still one
pass. With every A_i set to the first i - 1 columns of one W and every c_i to one c, it is tied
NADE exactly (tests/test_untied_nade.py): tying is a constraint on this model, and what it buys
is the parameter count and the running sum that makes tied NADE O(D d).
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.masked_linear import MaskedLinear
from chainrule.models.autoregressive import FixedOrderModel
from chainrule.models.base import register_model
from chainrule.nn import init_uniform_, strictly_lower_mask


@register_model("untied-nade")
class UntiedNADE(FixedOrderModel):
    """Binary NADE with `hidden` sigmoid units per conditional and no weights shared between
    conditionals; `order` permutes the dimensions."""

    def __init__(
        self,
        dim: int,
        hidden: int = 16,
        order: list[int] | None = None,
        image_shape: list[int] | None = None,
    ):
        super().__init__(dim, 2, image_shape)
        self.remember_config(locals())
        self.hidden = int(hidden)
        self.set_fixed_order(order)
        # rows i * hidden .. (i + 1) * hidden - 1 are A_i and c_i: they see the inputs before i
        self.inputs = MaskedLinear(dim, dim * self.hidden)
        self.inputs.set_mask(torch.kron(strictly_lower_mask(dim), torch.ones(self.hidden, 1)))
        with torch.no_grad():
            init_uniform_(self.inputs.weight, dim)
            self.inputs.bias.zero_()
        self.alpha = nn.Parameter(init_uniform_(torch.empty(dim, self.hidden), self.hidden))
        self.b = nn.Parameter(torch.zeros(dim))

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 6, "hidden": 3}

    def hidden_layers(self, x: torch.Tensor) -> torch.Tensor:
        """h_i for every conditional i, (B, D, hidden), of x in the model's order."""
        return torch.sigmoid(self.inputs(x)).view(x.shape[0], self.dim, self.hidden)

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_layers(self.to_order(x))
        return self.from_order(torch.einsum("bih,ih->bi", h, self.alpha) + self.b)
