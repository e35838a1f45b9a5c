"""Deliberately broken models: each breaks one rule of the contract, and the suite must catch it.
They are registered only inside the tests that use them (see the `registered` fixture)."""

from __future__ import annotations

import torch

from chainrule.models import FVSBN


class PeekingFVSBN(FVSBN):
    """An FVSBN whose conditioner sees x_i itself: the diagonal of its mask is left on."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"dim": 4}

    def __init__(self, dim: int, order: list[int] | None = None) -> None:
        super().__init__(dim, order)
        self.linear.set_mask(torch.ones(dim, dim).tril())


class UnnormalisedFVSBN(FVSBN):
    """An FVSBN whose head is shifted: every log-probability is 0.1 nats too high."""

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


BROKEN = {
    "broken-peeking": (PeekingFVSBN, "check_autoregressive_dependency"),
    "broken-unnormalised": (UnnormalisedFVSBN, "check_normalisation"),
    "broken-modal": (ModalFVSBN, "check_mode_independence"),
}
