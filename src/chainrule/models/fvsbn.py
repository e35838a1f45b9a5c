"""FVSBN: fully visible sigmoid belief network, p(x_i | x_<i) = sigmoid(b_i + sum_{j<i} W_ij x_j).

With `num_values` = K > 2 it becomes its K-ary analogue (multinomial logistic regressions):
p(x_i | x_<i) = softmax(b_i + sum_{j<i} W_ij onehot(x_j)), W_ij a K x K block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chainrule.models.autoregressive import FixedOrderModel
from chainrule.models.base import register_model
from chainrule.nn import MaskedLinear, strictly_lower_mask


@register_model("fvsbn")
class FVSBN(FixedOrderModel):
    """Logistic-regression conditionals; a strictly-lower-triangular masked linear map in `order`.

    Parameters: D(D-1)/2 free weights + D biases (the masked-out half is stored but always zero
    in effect). Fast sampling evaluates only row t of the linear map at step t: O(D^2) in all,
    against O(D^3) for the generic sampler.
    """

    def __init__(
        self,
        dim: int,
        order: list[int] | None = None,
        image_shape: list[int] | None = None,
        num_values: int = 2,
    ):
        super().__init__(dim, num_values, image_shape)
        self.remember_config(locals())
        self.set_fixed_order(order)
        self.k = 1 if self.num_values == 2 else self.num_values  # inputs and outputs per dimension
        self.linear = MaskedLinear(dim * self.k, dim * self.k)
        block = torch.ones(self.k, self.k)
        self.linear.set_mask(torch.kron(strictly_lower_mask(dim), block))
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 5}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs of the linear map: x itself (binary) or one-hot codes (K-ary), (B, D*k)."""
        if self.k == 1:
            return x
        return F.one_hot(x.long(), self.k).to(x.dtype).flatten(1)

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        logits_ordered = self.linear(self.encode(self.to_order(x)))
        if self.k > 1:
            logits_ordered = logits_ordered.unflatten(1, (self.dim, self.k))
        return self.from_order(logits_ordered)

    def _fast_sample(self, x, obs, cond, draw):
        w, k = self.linear.masked_weight(), self.k
        code = x.new_zeros(x.shape[0], self.dim * k)  # the encoded canvas, model order (x's device, dtype)
        for t, d in enumerate(self.order):
            rows = slice(t * k, (t + 1) * k)
            logit = F.linear(code[:, : t * k], w[rows, : t * k], self.linear.bias[rows])
            self._place(x, d, draw(logit.squeeze(1) if k == 1 else logit, d), obs)
            code[:, rows] = self.encode(x[:, d : d + 1])
        return x
