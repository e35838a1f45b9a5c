"""Deliberately broken models: each breaks one rule of the contract, and the suite must catch it.
They are registered only inside the tests that use them (see the `registered` fixture)."""

from __future__ import annotations

import torch

from chainrule.distributions import Bernoulli, Head
from chainrule.models import FVSBN


class PeekingFVSBN(FVSBN):
    """An FVSBN whose conditioner sees x_i itself: the diagonal of its mask is left on."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def __init__(self, dim: int, order=None, image_shape=None, num_values: int = 2) -> None:
        super().__init__(dim, order, image_shape, num_values)
        self.linear.set_mask(torch.ones(dim, dim).tril())


class UnnormalisedFVSBN(FVSBN):
    """An FVSBN whose head is shifted: every log-probability is 0.1 nats too high (its terms and
    its log_prob alike)."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def __init__(self, dim: int, order=None, image_shape=None, num_values: int = 2) -> None:
        super().__init__(dim, order, image_shape, num_values)
        self.head = ShiftedBernoulli(0.1 / dim)


class ShiftedBernoulli(Bernoulli):
    """A Bernoulli head whose every term is `shift` nats too high (summed by the default
    `Head.log_prob_sum`, so that terms and totals agree)."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return super().log_prob(params, x) + self.shift

    log_prob_sum = Head.log_prob_sum


class TermsOffFVSBN(FVSBN):
    """An FVSBN whose chain-rule terms are shifted while its log_prob is right (a model that
    overrides `log_prob_terms` alone, so that the two disagree)."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def log_prob_terms(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return super().log_prob_terms(x, cond) + 0.1 / self.dim


class ModalFVSBN(FVSBN):
    """An FVSBN whose log_prob depends on train/eval mode (hidden state the contract forbids)."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return super().log_prob(x, cond) - (0.1 if self.training else 0.0)


class BiasedSamplerFVSBN(FVSBN):
    """An FVSBN whose sampler (not its log_prob) is wrong: the first dimension of a free sample is
    always 0."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def sample(self, n, cond=None, *, given=None, mask=None, generator=None, method="fast"):
        x = super().sample(n, cond, given=given, mask=mask, generator=generator, method=method)
        if given is None:
            x[:, 0] = 0
        return x


BROKEN = {
    "broken-sampler": (BiasedSamplerFVSBN, "check_sample_frequencies"),
    "broken-peeking": (PeekingFVSBN, "check_autoregressive_dependency"),
    "broken-unnormalised": (UnnormalisedFVSBN, "check_normalisation"),
    "broken-terms": (TermsOffFVSBN, "check_terms_sum_to_log_prob"),
    "broken-modal": (ModalFVSBN, "check_mode_independence"),
}
