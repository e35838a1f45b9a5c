"""Discrete graphical and classical models: Bayesian networks, tabular models, BIF files.

Tables are torch tensors; data are integer codes (B, n) with -1 for missing values; inference is
exact variable elimination.
"""

from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.bif import format_bif, parse_bif, read_bif, write_bif
from chainrule.graphical.full_joint import FullJointModel
from chainrule.graphical.independent import IndependentModel
from chainrule.graphical.markov_chain import MarkovChainModel
from chainrule.graphical.parameters import (
    full_joint_parameters,
    independent_parameters,
    markov_chain_parameters,
    parameter_counts,
    parameter_table,
)
from chainrule.graphical.random_queries import random_queries
from chainrule.graphical.tabular import MISSING, TabularModel, enumerate_states

__all__ = [
    "MISSING",
    "BayesianNetwork",
    "FullJointModel",
    "IndependentModel",
    "MarkovChainModel",
    "TabularModel",
    "enumerate_states",
    "format_bif",
    "full_joint_parameters",
    "independent_parameters",
    "markov_chain_parameters",
    "parameter_counts",
    "parameter_table",
    "parse_bif",
    "random_queries",
    "read_bif",
    "write_bif",
]
