"""Deep order-agnostic NADE (Uria, Murray & Larochelle 2014, "A Deep and Tractable Density Estimator").

One network serves every ordering. It reads the observed part of the input *and which part that
is*, [x * m, m] (m: 1 where a dimension is known), and an MLP (`layers` ReLU layers of `hidden`
units) outputs the parameters of every dimension's conditional p(x_d | x_m) (a Bernoulli logit, or
a mixture of Gaussians for real values). Since dimension d's output reads only the known inputs,
any ordering o gives an exact autoregressive density p_o(x) = prod_t p(x_{o_t} | x_{o_<t}): D
passes, one per position.

Training (`training_log_prob`) is order-agnostic: per example a random ordering and a position
d ~ U{0..D-1}; the first d dimensions of the ordering are known, and the log-conditionals of the
other D - d, rescaled by D / (D - d), are an unbiased estimate of log p_o(x) for a random o, from
one pass. `log_prob` is exact: the uniform mixture (logmeanexp) of `num_orderings` fixed orderings
drawn with `seed`, the paper's ensemble (EoNADE / EoRNADE). They are random orderings, like the
ones training sees: on binarized MNIST the natural raster order scored 9 nats worse than a random
one (its prefixes, the top rows known, are masks order-agnostic training almost never draws);
`natural_first=True` makes the first one the natural order (the files saved before this option).
Sampling picks an ordering per example and walks it with a running first-layer pre-activation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.devices import draw as draw_on
from chainrule.devices import draw_device, model_device
from chainrule.distributions import Bernoulli, GaussianMixture, Head
from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import AutoregressiveModel, by_dimension
from chainrule.models.base import register_model
from chainrule.nn import init_uniform_

#: the conditional families a Deep NADE can have, by name
HEADS = ("bernoulli", "gaussian-mixture")
#: rows (positions x examples) scored in one network pass by the exact log-likelihood
ROWS_PER_PASS = 1 << 15


def make_deep_head(head: str, components: int, min_scale: float) -> Head:
    """The head named `head` (one of HEADS)."""
    if head == "bernoulli":
        return Bernoulli()
    if head == "gaussian-mixture":
        if components < 1:
            raise ChainruleError(f"components must be >= 1, got {components}")
        if min_scale <= 0:
            raise ChainruleError(f"min_scale must be positive, got {min_scale}")
        return GaussianMixture(components, min_scale)
    raise ChainruleError(f"head must be one of {list(HEADS)}, got {head!r}")


@register_model("deep-nade")
class DeepNADE(AutoregressiveModel):
    """Order-agnostic deep NADE with a `head` of HEADS; `log_prob` is the `num_orderings` ensemble."""

    ensemble_keyword = "num_orderings"

    @property
    def ensemble_size(self) -> int:
        """The number of orderings `log_prob` averages over (`num_orderings`)."""
        return self.num_orderings

    def __init__(
        self,
        dim: int,
        hidden: int = 500,
        layers: int = 2,
        num_orderings: int = 16,
        head: str = "bernoulli",
        components: int = 10,
        min_scale: float = 1e-3,
        validation_orderings: int = 8,
        seed: int = 0,
        natural_first: bool = False,
        image_shape: list[int] | None = None,
    ):
        """`image_shape` (binary images, e.g. [28, 28]) lets samples and completions be drawn as
        pictures; a recipe fills it from the data."""
        super().__init__(dim, image_shape=image_shape, head=make_deep_head(head, components, min_scale))
        self.remember_config(locals())
        for name, value in (("hidden", hidden), ("layers", layers), ("num_orderings", num_orderings)):
            if value < 1:
                raise ChainruleError(f"{name} must be >= 1, got {value}")
        if validation_orderings < 1:
            raise ChainruleError(f"validation_orderings must be >= 1, got {validation_orderings}")
        self.num_orderings, self.validation_orderings = int(num_orderings), int(validation_orderings)
        self.params_per_dim = self.head.params_per_dim
        g = torch.Generator().manual_seed(seed)
        natural = [torch.arange(dim)] if natural_first else []
        orderings = natural + [torch.randperm(dim, generator=g) for _ in range(num_orderings - len(natural))]
        self.register_buffer("orderings", torch.stack(orderings))
        sizes = [2 * dim] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            init_uniform_(layer.weight, layer.in_features, generator=g)
            init_uniform_(layer.bias, layer.in_features, generator=g)
        self.out_weight = nn.Parameter(
            init_uniform_(torch.empty(dim, hidden, self.params_per_dim), hidden, generator=g)
        )
        bias = torch.zeros(dim, self.params_per_dim)
        if head == "gaussian-mixture" and components > 1:  # equal weights, means spread over [-1, 1]
            bias[:, components : 2 * components] = torch.linspace(-1, 1, components)
        self.out_bias = nn.Parameter(bias)

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4, "hidden": 8, "layers": 2, "num_orderings": 3, "seed": 1}

    def warm_start_state(self, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A saved model's parameters; the evaluation orderings stay this model's own (they are
        its configuration, `seed` and `natural_first`, not something training learned)."""
        return super().warm_start_state({k: v for k, v in source.items() if k != "orderings"})

    # -- the network ---------------------------------------------------------------------------
    def _hidden(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Last hidden layer (..., H) for inputs x (..., D) of which `known` (bool) are observed."""
        m = known.to(x.dtype)
        return self._upper(self.layers[0](torch.cat([x * m, m], -1)))

    def _upper(self, pre: torch.Tensor) -> torch.Tensor:
        """From the first layer's pre-activation to the last hidden layer."""
        h = F.relu(pre)
        for layer in self.layers[1:]:
            h = F.relu(layer(h))
        return h

    def _out(self, params: torch.Tensor) -> torch.Tensor:
        """Drop the parameter axis of a one-number head (Bernoulli params are (...), not (..., 1))."""
        return params.squeeze(-1) if self.params_per_dim == 1 else params

    def params_given(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Parameters of every dimension's conditional given the `known` (B, D) entries of x:
        (B, D) for the Bernoulli head, (B, D, P) otherwise."""
        h = self._hidden(x, known)
        return self._out(torch.einsum("bh,dhp->bdp", h, self.out_weight) + self.out_bias)

    def conditioner(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Parameters of every dimension under the first ordering (dimension o_t given o_<t)."""
        order = self.orderings[0]
        h = self._position_hidden(x, order, 0, self.dim)
        params = torch.einsum("tbh,thp->btp", h, self.out_weight[order]) + self.out_bias[order]
        return self._out(by_dimension(params, order))

    def _prefix_masks(self, order: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """(stop - start, D) bool: row t says which dimensions come before position start + t."""
        position = torch.empty_like(order).index_copy_(0, order, torch.arange(self.dim, device=order.device))
        steps = torch.arange(start, stop, device=order.device)
        return position.unsqueeze(0) < steps.unsqueeze(1)

    def _position_hidden(
        self, x: torch.Tensor, order: torch.Tensor, start: int, stop: int, within: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last hidden layer (T, B, H) at positions start..stop-1 of `order`: position t knows
        o_<t (and, with `within`, only those of them within). The first layer's pre-activation is
        one pass at `start` plus a running sum of one column per position (NADE's trick, exact up
        to rounding), so the positions cost the upper layers only, not D * H more each."""
        first = self.layers[0]
        known = self._prefix_masks(order, start, start + 1)  # (1, D): o_<start
        known = known & within if within is not None else known.expand(x.shape[0], -1)
        m = known.to(x.dtype)
        base = first(torch.cat([x * m, m], -1))  # (B, H)
        # row t adds the column of o_{t-1}; row `start` adds nothing (base already knows o_<start)
        steps = torch.arange(start, stop, device=order.device)
        previous = order[(steps - 1).clamp(min=0)]
        adds = (steps > start).to(first.weight.dtype).unsqueeze(1)
        value_weight = first.weight[:, previous].T * adds  # (T, H)
        known_weight = first.weight[:, self.dim + previous].T * adds
        values = x[:, previous].T.unsqueeze(-1)  # (T, B, 1)
        running = torch.addcmul(known_weight.unsqueeze(1), values, value_weight.unsqueeze(1))
        if within is not None:
            running = running * within[:, previous].T.unsqueeze(-1).to(running.dtype)
        running[0] += base.to(running.dtype)
        return self._upper(running.cumsum(0))

    # -- exact likelihood ----------------------------------------------------------------------
    def ordering_terms(self, x: torch.Tensor, order: torch.Tensor, within: torch.Tensor | None = None):
        """log p(x_{o_t} | x_{o_<t}) for every position t of ordering `order`, shape (B, D) by
        position. With `within` (B, D bool), only those dimensions are conditioned on and scored
        (the others' terms are 0): the log-marginal of x_within under the ordering restricted to it."""
        b = x.shape[0]
        per_pass = max(1, ROWS_PER_PASS // max(b, 1))
        out = []
        for start in range(0, self.dim, per_pass):
            stop = min(start + per_pass, self.dim)
            h = self._position_hidden(x, order, start, stop, within)
            dims = order[start:stop]
            params = torch.einsum("tbh,thp->tbp", h, self.out_weight[dims]) + self.out_bias[dims].unsqueeze(1)
            terms = self.head.log_prob(self._out(params), x[:, dims].T)  # (T, B)
            if within is not None:
                terms = terms * within[:, dims].T.to(terms.dtype)
            out.append(terms.T)
        return torch.cat(out, 1)

    def log_prob(self, x, cond=None, *, num_orderings: int | None = None) -> torch.Tensor:
        """Exact log-likelihood (nats, (B,)) of the uniform mixture of the first `num_orderings`
        orderings (default: all), the same in train and eval mode."""
        count = self.num_orderings if num_orderings is None else int(num_orderings)
        if not 1 <= count <= self.num_orderings:
            raise ChainruleError(f"num_orderings must be in 1..{self.num_orderings}, got {count}")
        self.check_cond(cond)
        x = self.prepare(x)
        per = torch.stack([self.ordering_terms(x, self.orderings[m]).sum(1) for m in range(count)])
        return torch.logsumexp(per, 0) - math.log(count)

    def log_prob_terms(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Chain-rule terms under the first ordering, by dimension (B, D)."""
        self.check_cond(cond)
        x = self.prepare(x)
        terms = self.ordering_terms(x, self.orderings[0])
        return by_dimension(terms, self.orderings[0])

    def validation_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Early stopping scores the ensemble of the first `validation_orderings` orderings."""
        return self.log_prob(x, cond, num_orderings=min(self.num_orderings, self.validation_orderings))

    def training_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The order-agnostic estimate of log p_o(x) for a random ordering o, one pass: per example
        a uniformly random set of d ~ U{0..D-1} known dimensions (the first d of a random ordering),
        and the sum of the other dimensions' log-conditionals times D / (D - d). Draws from torch's
        global random stream (seeded by training)."""
        self.check_cond(cond)
        x = self.prepare(x)
        b, dim = x.shape
        d = torch.randint(0, dim, (b, 1), device=x.device)
        known = torch.rand(b, dim, device=x.device).argsort(1) < d  # a uniform subset of size d
        terms = self.head.log_prob(self.params_given(x, known), x)
        scale = dim / (dim - d.squeeze(1)).to(terms.dtype)
        return (terms * (~known).to(terms.dtype)).sum(1) * scale

    def sampling_order(self) -> list[int] | None:
        """The ordering when there is one; None for an ensemble of several."""
        return self.orderings[0].tolist() if self.num_orderings == 1 else None

    def member_order(self) -> list[int]:
        return self.orderings[0].tolist()

    # -- sampling and completion ---------------------------------------------------------------
    def _run(self, x, obs, cond, method: str, draw, generator) -> torch.Tensor:
        """Each example picks an ordering (uniformly; when completing, from its posterior given the
        observed values), then walks it: observed dimensions are known from the start, so every
        unobserved one is drawn given all observed ones and the unobserved ones before it."""
        with torch.no_grad():
            pick = self._pick_orderings(x, obs, generator)
            out = x.clone()
            for m in pick.unique().tolist():
                rows = (pick == m).nonzero().squeeze(1).to(x.device)
                part_obs = None if obs is None else obs[rows]
                walk = self._walk_fast if method == "fast" else self._walk_generic
                out[rows] = walk(x[rows].clone(), part_obs, self.orderings[m], draw)
        return out

    def _pick_orderings(self, x: torch.Tensor, obs: torch.Tensor | None, generator) -> torch.Tensor:
        """Ordering per example on the CPU: uniform, or p(m | x_obs) ∝ p_m(x_obs), the observed
        values' marginal under ordering m restricted to them (exact for this network)."""
        n, device = x.shape[0], model_device(self)
        if obs is None or self.num_orderings == 1:
            return draw_on(torch.randint, self.num_orderings, (n,), generator=generator, device=device).cpu()
        logw = torch.stack([self.ordering_terms(x, o, obs).sum(1) for o in self.orderings], 1)
        probs = torch.softmax(logw.double(), 1).to(draw_device(generator, device))
        return torch.multinomial(probs, 1, generator=generator).squeeze(1).cpu()

    def _walk_generic(self, x, obs, order, draw) -> torch.Tensor:
        """Reference walk: a full network pass for every position."""
        known = torch.zeros_like(x, dtype=torch.bool) if obs is None else obs.clone()
        for d in order.tolist():
            self._place(x, d, draw(self.params_given(x, known)[:, d], d), obs)
            known[:, d] = True
        return x

    def _walk_fast(self, x, obs, order, draw) -> torch.Tensor:
        """The same walk with a running first-layer pre-activation (one column added per step) and
        only dimension d's output computed; consumes the random stream as `_walk_generic` does."""
        known = torch.zeros_like(x, dtype=torch.bool) if obs is None else obs.clone()
        first = self.layers[0]
        m = known.to(x.dtype)
        pre = first(torch.cat([x * m, m], -1))
        for d in order.tolist():
            h = self._upper(pre)
            params = self._out(h @ self.out_weight[d] + self.out_bias[d])
            self._place(x, d, draw(params, d), obs)
            new = (~known[:, d]).to(x.dtype).unsqueeze(1)
            pre = pre + new * (x[:, d : d + 1] * first.weight[:, d] + first.weight[:, self.dim + d])
            known[:, d] = True
        return x


@register_model("deep-rnade")
class DeepRNADE(DeepNADE):
    """Deep order-agnostic RNADE: real values, a `components`-Gaussian mixture per conditional."""

    def __init__(
        self,
        dim: int,
        hidden: int = 100,
        layers: int = 2,
        num_orderings: int = 16,
        components: int = 10,
        min_scale: float = 1e-3,
        validation_orderings: int = 16,
        seed: int = 0,
        natural_first: bool = False,
    ):
        super().__init__(
            dim,
            hidden,
            layers,
            num_orderings,
            "gaussian-mixture",
            components,
            min_scale,
            validation_orderings,
            seed,
            natural_first,
        )
        self.remember_config(locals())

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 2, "hidden": 8, "layers": 2, "num_orderings": 2, "components": 2, "seed": 1}
