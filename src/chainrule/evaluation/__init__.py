"""Evaluation: NLL in nats and bits/dim with standard errors, for array data and token streams.

`evaluate(model, data, split, n)` is the entry point (exported as `chainrule.evaluate`); the
pieces below it (`evaluate_nll`, `evaluate_sequence`) take tensors.
"""

from chainrule.evaluation.api import evaluate, held_out_metrics, latent_options, models_sequences
from chainrule.evaluation.nll import NLLReport, eval_mode, evaluate_nll, split_condition
from chainrule.evaluation.sequence import EVAL_STREAMS, SequenceReport, eval_chunks, evaluate_sequence

__all__ = [
    "EVAL_STREAMS",
    "NLLReport",
    "SequenceReport",
    "eval_chunks",
    "eval_mode",
    "evaluate",
    "evaluate_nll",
    "evaluate_sequence",
    "latent_options",
    "models_sequences",
    "split_condition",
    "held_out_metrics",
]
