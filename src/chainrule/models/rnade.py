"""RNADE: real-valued NADE with mixture-of-Gaussians conditionals (Uria, Murray & Larochelle 2013).

a_1 = c,  a_{d+1} = a_d + W[:, d] x_d          (tied input weights, as in NADE: O(DH) in all)
h_d = sigmoid(rho_d a_d)                        (rho_d: the paper's activation rescaling)
p(x_d | x_<d) = sum_k alpha_dk N(x_d; mu_dk, sigma_dk),  [alpha, mu, log sigma]_d = V_d^T h_d + b_d
with per-dimension output layers V_d (H x 3K). The head floors every sigma at `min_scale`.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.distributions import GaussianMixture
from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import AutoregressiveModel, check_order
from chainrule.models.base import register_model
from chainrule.nn import exclusive_cumsum, init_uniform_


@register_model("rnade")
class RNADE(AutoregressiveModel):
    """Real-valued vectors; `hidden` sigmoid units, `components` Gaussians per conditional."""

    def __init__(
        self,
        dim: int,
        hidden: int = 50,
        components: int = 5,
        order: list[int] | None = None,
        min_scale: float = 1e-3,
        seed: int = 0,
    ):
        super().__init__(dim, head=GaussianMixture(components, min_scale))
        self.remember_config(locals())
        if hidden < 1:
            raise ChainruleError(f"hidden must be positive, got {hidden}")
        self.hidden, self.components = int(hidden), int(components)
        self.order = check_order(order, dim)
        self.register_buffer("perm", torch.tensor(self.order), persistent=False)
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(init_uniform_(torch.empty(hidden, dim), dim, generator=g))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.rho = nn.Parameter(torch.ones(dim))
        self.V = nn.Parameter(init_uniform_(torch.empty(dim, hidden, 3 * components), hidden, generator=g))
        # initial conditionals: equal weights, means spread over [-1, 1], unit-ish scales
        b = torch.zeros(dim, 3, components)
        b[:, 1] = torch.linspace(-1, 1, components) if components > 1 else 0.0
        self.b = nn.Parameter(b.flatten(1))

    def sampling_order(self) -> list[int]:
        return self.order

    def conditioner(self, x: torch.Tensor) -> torch.Tensor:
        xo = x[:, self.perm]  # (B, D) in model order
        contrib = xo.unsqueeze(-1) * self.W.T  # (B, D, H)
        a = self.c + exclusive_cumsum(contrib)
        h = torch.sigmoid(self.rho.unsqueeze(-1) * a)
        params = torch.einsum("bdh,dhp->bdp", h, self.V) + self.b
        return torch.empty_like(params).index_copy_(1, self.perm, params)

    def _fast_sample(self, x, obs, given, generator):
        a = self.c.expand(x.shape[0], -1).clone()
        for t, d in enumerate(self.order):
            params = torch.sigmoid(self.rho[t] * a) @ self.V[t] + self.b[t]
            self._place(x, d, self.head.sample(params, generator), obs)
            a.addr_(x[:, d], self.W[:, t])
        return x
