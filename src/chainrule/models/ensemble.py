"""Ensembles of autoregressive models that share parameters but differ in masks or orders.

Connectivity-agnostic MADE (one set of weights, several masks) and order-agnostic RNADE (one set
of per-dimension weights, several orders) are both uniform mixtures of M exact autoregressive
densities: log p(x) = logmeanexp_m log p_m(x), averaged probabilities, which stay normalised.
Subclasses say how to switch member (`_load_mask`) and give its order (`member_order`); this class
trains one member per minibatch (`training_log_prob` after `on_train_step`), scores the mixture
(`log_prob`, in every mode), and samples or completes from it exactly.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from chainrule.devices import draw, draw_device, model_device
from chainrule.errors import ChainruleError
from chainrule.models.autoregressive import AutoregressiveModel


class MaskEnsembleModel(AutoregressiveModel):
    """An autoregressive model with `num_masks` members; `use_mask(m)` selects the one in use."""

    num_masks: int = 1
    mask_index: int = 0
    ensemble_keyword = "num_masks"

    @property
    def ensemble_size(self) -> int:
        """The number of members (`num_masks`)."""
        return self.num_masks

    def _load_mask(self, m: int) -> None:
        """Make member `m` the one `conditioner` and `sampling_order` use."""
        raise NotImplementedError

    def use_mask(self, m: int) -> None:
        """Select ensemble member `m` (a mask for MADE, an order for RNADE)."""
        if not 0 <= m < self.num_masks:
            raise ChainruleError(f"mask index {m} outside 0..{self.num_masks - 1}")
        self.mask_index = m
        self._load_mask(m)

    @contextmanager
    def keeping_current_mask(self):
        """Loop over members inside this block; the member in use before it is restored after it."""
        current = self.mask_index
        try:
            yield
        finally:
            self.use_mask(current)

    def sampling_order(self) -> list[int] | None:
        """The members' order when they all share one (one member, or connectivity-agnostic MADE
        in the natural order); None for a mixture of several orders."""
        orders = [self.order_of(m) for m in range(self.num_masks)]
        return orders[0] if all(o == orders[0] for o in orders) else None

    def order_of(self, m: int) -> list[int]:
        """The order of member `m`."""
        raise NotImplementedError

    def member_order(self) -> list[int]:
        """The order of the member in use."""
        return self.order_of(self.mask_index)

    def on_train_step(self, step: int) -> None:
        """Agnostic training: the next member every minibatch."""
        if self.num_masks > 1:
            self.use_mask(step % self.num_masks)

    def training_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """What agnostic training maximises: the exact log-likelihood under the member in use."""
        return super().log_prob(x, cond)

    def log_prob(self, x, cond=None, *, num_masks: int | None = None) -> torch.Tensor:
        """Exact log-likelihood of the uniform mixture of the first `num_masks` members (default:
        all), whatever the train/eval mode."""
        m_count = self.num_masks if num_masks is None else int(num_masks)
        if not 1 <= m_count <= self.num_masks:
            raise ChainruleError(f"num_masks must be in 1..{self.num_masks}, got {m_count}")
        if self.num_masks == 1:
            return super().log_prob(x, cond)
        per_mask = []
        with self.keeping_current_mask():
            for m in range(m_count):
                self.use_mask(m)
                per_mask.append(super().log_prob(x, cond))
        return torch.logsumexp(torch.stack(per_mask), 0) - math.log(m_count)

    def validation_log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Validation score for early stopping: the mixture of the first (at most 8) members, so
        that checkpoints are chosen by what ensemble evaluation will measure, at bounded cost."""
        return self.log_prob(x, cond, num_masks=min(self.num_masks, 8))

    def _run(self, x, obs, cond, method, draw, generator) -> torch.Tensor:
        """With several members, each example first picks a member, then is generated in that
        member's order: an ancestral draw from the mixture. When completing, the member is drawn
        from its posterior given the observed values, p(m | x_obs) ∝ p_m(x_obs), which is exact
        when the observed dimensions come first in every member's order."""
        if self.num_masks == 1:
            return super()._run(x, obs, cond, method, draw, generator)
        comp = self._pick_masks(x, obs, generator)
        out = x.clone()
        with self.keeping_current_mask():
            for m in comp.unique().tolist():
                rows = (comp == m).nonzero().squeeze(1).to(x.device)
                self.use_mask(m)
                part_obs = None if obs is None else obs[rows]
                out[rows] = super()._run(x[rows], part_obs, cond, method, draw, generator)
        return out

    @torch.no_grad()
    def _pick_masks(self, canvas, obs, generator) -> torch.Tensor:
        """Mixture member per example: uniform, or its posterior given the observed values. Drawn on
        the generator's device (chainrule.devices), returned on the CPU: the members are used to
        index rows and as Python ints."""
        device, n = model_device(self), canvas.shape[0]
        if obs is None:
            return draw(torch.randint, self.num_masks, (n,), generator=generator, device=device).cpu()
        logw = []
        with self.keeping_current_mask():
            for m in range(self.num_masks):
                self.use_mask(m)
                per_dim = self.head.log_prob(self.conditioner(canvas), canvas)
                logw.append((per_dim * obs).sum(-1))
        probs = torch.softmax(torch.stack(logw, 1).double(), 1)
        probs = probs.to(draw_device(generator, device))  # multinomial takes its device from probs
        return torch.multinomial(probs, 1, generator=generator).squeeze(1).cpu()
