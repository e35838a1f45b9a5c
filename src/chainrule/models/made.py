"""MADE: masked autoencoder for distribution estimation (Germain et al. 2015).

An MLP whose weight masks come from integer *degrees*: input d has degree = its position in
the order (1..D); a hidden unit of degree m sees inputs of degree <= m; output d sees hidden
units of degree < its input degree. Each of `num_masks` masks has its own hidden degrees
(connectivity-agnostic) and, with `ordering="random"`, its own input order (order-agnostic).
An explicit `order` (a permutation of 0..D-1, as NADE and FVSBN take) replaces the natural order:
every mask uses it, or, with `ordering="random"`, the first mask does.
Training cycles through the masks, one per minibatch. The ensemble density is the uniform
mixture of the masks' densities, log p(x) = logmeanexp_m log p_m(x): averaged probabilities,
which stay normalised, not averaged logits (the mixture logic lives in `models/ensemble.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.errors import ChainruleError
from chainrule.masked_linear import MaskState
from chainrule.models.autoregressive import check_order
from chainrule.models.base import register_model
from chainrule.models.ensemble import MaskEnsembleModel
from chainrule.nn import MaskedLinear

#: the masks of every member are kept once built when all of them take at most this many bytes
#: (MADE-8000 with 8 masks: 400 MB)
MASK_CACHE_BYTES = 1 << 29


@register_model("made")
class MADE(MaskEnsembleModel):
    """Masked MLP with ReLU hidden layers `hidden` (a list) and a Bernoulli/Categorical head;
    `order` (default: natural) is the order of the chain rule, e.g. `order=[1, 2, 0]` for the
    factorisation p(x_1) p(x_2 | x_1) p(x_0 | x_1, x_2)."""

    def __init__(
        self,
        dim: int,
        hidden: list[int] | int = 500,
        num_masks: int = 1,
        ordering: str = "natural",
        num_values: int = 2,
        seed: int = 0,
        image_shape: list[int] | None = None,
        order: list[int] | None = None,
    ):
        super().__init__(dim, num_values, image_shape)
        order = None if order is None else check_order(order, dim)  # a plain list in config.json
        self.remember_config(locals())
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        if not hidden or min(hidden) < 1:
            raise ChainruleError("MADE needs at least one hidden layer of positive width")
        if ordering not in ("natural", "random"):
            raise ChainruleError(f"ordering must be 'natural' or 'random', got {ordering!r}")
        if num_masks < 1:
            raise ChainruleError("num_masks must be >= 1")
        self.hidden = hidden
        self.num_masks = int(num_masks)
        self.ordering = ordering
        self.k = self.num_values if self.num_values > 2 else 1  # outputs per dimension
        sizes = [dim, *hidden]
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = MaskedLinear(hidden[-1], dim * self.k)
        # degrees of every mask: inputs (M, D) and each hidden layer (M, H_l); persistent.
        g = torch.Generator().manual_seed(seed)
        in_deg, hid_deg = [], [[] for _ in hidden]
        first = torch.arange(dim) if order is None else torch.tensor(order)
        for m in range(self.num_masks):
            perm = first if (ordering == "natural" or m == 0) else torch.randperm(dim, generator=g)
            deg = torch.empty(dim, dtype=torch.long)
            deg[perm] = torch.arange(1, dim + 1)
            in_deg.append(deg)
            low = 1
            for li, h in enumerate(hidden):
                hd = (
                    torch.randint(low, max(dim, low + 1), (h,), generator=g)
                    if dim > 1
                    else torch.ones(h, dtype=torch.long)
                )
                if m == 0:  # hidden units are exchangeable: sorted, mask 0's rows form a staircase
                    hd = hd.sort().values  # that MaskedLinear multiplies in row blocks (~half the work)
                hid_deg[li].append(hd)
                low = int(hd.min())
        self.register_buffer("input_degrees", torch.stack(in_deg))
        for li, hd in enumerate(hid_deg):
            self.register_buffer(f"hidden_degrees_{li}", torch.stack(hd))
        self.mask_index = 0
        self._mask_states: dict[int, list[MaskState]] = {}  # derived from the degrees; not saved
        self.use_mask(0)
        self.register_load_state_dict_post_hook(_masks_from_loaded_degrees)

    # -- masks -------------------------------------------------------------------------------
    def _load_mask(self, m: int) -> None:
        """Load the masks of ensemble member `m` into the layers' mask buffers: built from the
        degrees the first time, then kept (`MASK_CACHE_BYTES`), as training switches member
        every step and scoring the ensemble every batch (building them cost about as much as a
        training step of MADE-2000: 16 ms against 17 ms, one thread)."""
        layers = [*self.layers, self.out]
        states = self._mask_states.get(m)
        weight = self.out.weight
        if states is not None and (states[0][0].device, states[0][0].dtype) == (weight.device, weight.dtype):
            for layer, state in zip(layers, states):
                layer.set_mask_state(state)
            return
        self._build_masks(m)
        size = sum(layer.mask.numel() * layer.mask.element_size() for layer in layers)
        if self.num_masks > 1 and size * self.num_masks <= MASK_CACHE_BYTES:
            self._mask_states[m] = [layer.mask_state() for layer in layers]

    def _build_masks(self, m: int) -> None:
        """Set the layers' masks of member `m` from its degrees."""
        prev = self.input_degrees[m]
        for li, layer in enumerate(self.layers):
            deg = getattr(self, f"hidden_degrees_{li}")[m]
            layer.set_mask(deg[:, None] >= prev[None, :])
            prev = deg
        out_mask = self.input_degrees[m][:, None] > prev[None, :]
        self.out.set_mask(out_mask.repeat_interleave(self.k, 0))

    def warm_start_state(self, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """As `Model.warm_start_state`; a source with another number of masks gives its members'
        degrees to as many of this model's members (growing a trained one-mask MADE into an
        ensemble keeps its mask as member 0)."""
        state = super().warm_start_state(source)
        for name in ["input_degrees", *(f"hidden_degrees_{li}" for li in range(len(self.hidden)))]:
            own, theirs = state[name], source.get(name)
            if theirs is not None and theirs.shape != own.shape and theirs.shape[1:] == own.shape[1:]:
                members = min(len(own), len(theirs))
                state[name] = torch.cat([theirs[:members].to(own.device), own[members:]])
        return state

    def order_of(self, m: int) -> list[int]:
        return torch.argsort(self.input_degrees[m]).tolist()

    def num_free_parameters(self) -> int:
        """The stored parameters less the weights that every mask of the ensemble zeroes (with one
        mask, all its masked-out connections)."""
        masked = [*self.layers, self.out]
        used = [torch.zeros_like(layer.weight, dtype=torch.bool) for layer in masked]
        with self.keeping_current_mask():
            for m in range(self.num_masks):
                self.use_mask(m)
                used = [u | (layer.mask != 0) for u, layer in zip(used, masked)]
        return self.num_parameters() - sum(int((~u).sum()) for u in used)

    @classmethod
    def tiny_config(cls) -> dict:
        return {
            "dim": 5,
            "hidden": [8],
            "num_masks": 1,
            "ordering": "random",
            "seed": 1,
        }  # one mask: its dependency is checked

    # -- density -----------------------------------------------------------------------------
    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = F.relu(layer(h))
        return h

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.out(self._hidden(x))
        return out if self.k == 1 else out.view(x.shape[0], self.dim, self.k)

    def _fast_sample(self, x, obs, cond, draw):
        """Cache the first layer's pre-activations: adding input d changes them by one column."""
        w1 = self.layers[0].masked_weight()
        w_out = self.out.masked_weight()
        a1 = self.layers[0].bias.expand(x.shape[0], -1).clone()
        for d in self.member_order():
            h = F.relu(a1)
            for layer in self.layers[1:]:
                h = F.relu(layer(h))
            rows = slice(d * self.k, (d + 1) * self.k)
            params = F.linear(h, w_out[rows], self.out.bias[rows])
            params = params.squeeze(1) if self.k == 1 else params
            self._place(x, d, draw(params, d), obs)
            a1.addr_(x[:, d], w1[:, d])
        return x


def _masks_from_loaded_degrees(model: MADE, incompatible_keys) -> None:
    """The masks are derived from the degree buffers: rebuild them from the loaded degrees (a
    file's degrees need not be the ones this model's constructor drew)."""
    model._mask_states.clear()
    model.use_mask(model.mask_index)
