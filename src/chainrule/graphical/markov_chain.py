"""The Markov chain p(x) = p(x_1) prod_i p(x_i | x_{i-1}) in variable order (inhomogeneous)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.tabular import check_cardinalities, default_names


class MarkovChainModel(BayesianNetwork):
    """A first-order chain x_1 -> x_2 -> ... -> x_n with one transition table per step.

    `initial` has shape (k_1,); `transitions[i - 1]` has shape (k_{i-1}, k_i) with rows summing
    to 1 (uniform by default). Free parameters: (k_1 - 1) + sum_i k_{i-1} (k_i - 1). A chain is a
    Bayesian network, so log_prob with missing values, sample, fit and inference are inherited.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        initial: torch.Tensor | Sequence[float] | None = None,
        transitions: Sequence[torch.Tensor | Sequence] | None = None,
        names: Sequence[str] | None = None,
    ):
        cards = check_cardinalities(cardinalities)
        names = default_names(len(cards), names)
        if initial is None:
            initial = torch.full((cards[0],), 1.0 / cards[0], dtype=torch.float64)
        if transitions is None:
            transitions = [
                torch.full((cards[i - 1], cards[i]), 1.0 / cards[i], dtype=torch.float64)
                for i in range(1, len(cards))
            ]
        if len(transitions) != len(cards) - 1:
            raise ChainruleError(
                f"a chain over {len(cards)} variables needs {len(cards) - 1} transition tables"
            )
        edges = [(names[i - 1], names[i]) for i in range(1, len(cards))]
        cpds = {names[0]: initial, **{names[i]: transitions[i - 1] for i in range(1, len(cards))}}
        super().__init__(dict(zip(names, cards)), edges, cpds, name="markov-chain")
