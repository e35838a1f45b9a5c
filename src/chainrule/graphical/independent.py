"""The fully independent model p(x) = prod_i p_i(x_i): a Bayesian network with no edges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.bn_tables import default_table, seeded
from chainrule.graphical.tabular import check_cardinalities, default_names
from chainrule.models.base import register_model


@register_model("independent")
class IndependentModel(BayesianNetwork):
    """n independent categorical variables; sum(k_i - 1) free parameters.

        `marginals[i]` is a probability vector of length cardinalities[i] (uniform by default, random
    with `seed`).
        Inherits log_prob (missing values allowed), sample, fit and inference from BayesianNetwork.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        marginals: Sequence[torch.Tensor | Sequence[float]] | None = None,
        names: Sequence[str] | None = None,
        seed: int | None = None,
    ):
        cards = check_cardinalities(cardinalities)
        names = default_names(len(cards), names)
        if marginals is None:
            g = seeded(seed)
            marginals = [default_table((k,), g) for k in cards]
        if len(marginals) != len(cards):
            raise ChainruleError(f"got {len(marginals)} marginals for {len(cards)} variables")
        super().__init__(dict(zip(names, cards)), [], dict(zip(names, marginals)), name="independent")
        self.remember_config({"cardinalities": cards, "names": names})

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """Three variables of cardinalities 2, 3, 2 with random marginals (seed 0)."""
        return {"cardinalities": [2, 3, 2], "seed": 0}
