"""The Markov chain p(x) = p(x_1) prod_i p(x_i | x_{i-1}) in variable order (inhomogeneous)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from chainrule.errors import ChainruleError
from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.bn_tables import default_table, seeded
from chainrule.graphical.tabular import check_cardinalities, default_names
from chainrule.models.base import register_model


@register_model("markov-chain")
class MarkovChainModel(BayesianNetwork):
    """A first-order chain x_1 -> x_2 -> ... -> x_n with one transition table per step.

    `initial` has shape (k_1,); `transitions[i - 1]` has shape (k_{i-1}, k_i) with rows summing
    to 1 (uniform by default, random with `seed`). Free parameters: (k_1 - 1) + sum_i k_{i-1}
    (k_i - 1). A chain is a Bayesian network, so log_prob with missing values, sample, fit and
    inference are inherited.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        initial: torch.Tensor | Sequence[float] | None = None,
        transitions: Sequence[torch.Tensor | Sequence] | None = None,
        names: Sequence[str] | None = None,
        seed: int | None = None,
    ):
        cards = check_cardinalities(cardinalities)
        names = default_names(len(cards), names)
        g = seeded(seed)
        if initial is None:
            initial = default_table((cards[0],), g)
        if transitions is None:
            transitions = [default_table((cards[i - 1], cards[i]), g) for i in range(1, len(cards))]
        if len(transitions) != len(cards) - 1:
            raise ChainruleError(
                f"a chain over {len(cards)} variables needs {len(cards) - 1} transition tables"
            )
        edges = [(names[i - 1], names[i]) for i in range(1, len(cards))]
        cpds = {names[0]: initial, **{names[i]: transitions[i - 1] for i in range(1, len(cards))}}
        super().__init__(dict(zip(names, cards)), edges, cpds, name="markov-chain")
        self.remember_config({"cardinalities": cards, "names": names})

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """A chain of four variables of cardinalities 2, 3, 2, 3 with random tables (seed 0)."""
        return {"cardinalities": [2, 3, 2, 3], "seed": 0}
