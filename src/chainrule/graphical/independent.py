"""The fully independent model p(x) = prod_i p_i(x_i): a Bayesian network with no edges."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.tabular import check_cardinalities, default_names


class IndependentModel(BayesianNetwork):
    """n independent categorical variables; sum(k_i - 1) free parameters.

    `marginals[i]` is a probability vector of length cardinalities[i] (uniform by default).
    Inherits log_prob (missing values allowed), sample, fit and inference from BayesianNetwork.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        marginals: Sequence[torch.Tensor | Sequence[float]] | None = None,
        names: Sequence[str] | None = None,
    ):
        cards = check_cardinalities(cardinalities)
        names = default_names(len(cards), names)
        if marginals is None:
            marginals = [torch.full((k,), 1.0 / k, dtype=torch.float64) for k in cards]
        if len(marginals) != len(cards):
            raise ChainruleError(f"got {len(marginals)} marginals for {len(cards)} variables")
        super().__init__(dict(zip(names, cards)), [], dict(zip(names, marginals)), name="independent")
