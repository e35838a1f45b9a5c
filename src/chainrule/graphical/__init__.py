"""Discrete graphical and classical models: Bayesian networks, tabular models, BIF files.

Tables are torch tensors; data are integer codes (B, n) with -1 for missing values; inference is
exact variable elimination.
"""

from chainrule.graphical.bayesian_network import BayesianNetwork
from chainrule.graphical.bif import format_bif, parse_bif, read_bif, write_bif
from chainrule.graphical.chow_liu import chow_liu_tree, maximum_spanning_tree, mutual_information
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
from chainrule.graphical.structure_learning import (
    edge_differences,
    learn_structure,
    network_score,
    states_from_data,
    structural_hamming_distance,
)
from chainrule.graphical.structure_scores import SCORES, FamilyScores, structure_score
from chainrule.graphical.structure_search import SearchResult, hill_climb
from chainrule.graphical.tabular import MISSING, TabularModel, enumerate_states

__all__ = [
    "MISSING",
    "SCORES",
    "BayesianNetwork",
    "FamilyScores",
    "FullJointModel",
    "IndependentModel",
    "MarkovChainModel",
    "SearchResult",
    "TabularModel",
    "chow_liu_tree",
    "edge_differences",
    "enumerate_states",
    "format_bif",
    "full_joint_parameters",
    "hill_climb",
    "independent_parameters",
    "learn_structure",
    "markov_chain_parameters",
    "maximum_spanning_tree",
    "mutual_information",
    "network_score",
    "parameter_counts",
    "parameter_table",
    "parse_bif",
    "random_queries",
    "read_bif",
    "states_from_data",
    "structural_hamming_distance",
    "structure_score",
    "write_bif",
]
