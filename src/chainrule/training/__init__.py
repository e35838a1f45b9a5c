"""Maximum-likelihood training on Lightning: loss = mean of -log_prob over minibatches.

config.py (TrainConfig), schedules.py (Adam or SGD with momentum, cosine schedules),
callbacks.py (wall clock, parameter average, checkpoints and early stopping), objectives.py (a
batch of arrays or of token chunks -> negative log-likelihoods), sequence_data.py (token-chunk
loaders), module.py (the one LightningModule) and fit.py (`fit`).
"""

from chainrule.training.callbacks import ParameterEMA, WallClock, load_raw_weights, run_callbacks
from chainrule.training.config import OPTIMIZERS, PRECISIONS, TrainConfig
from chainrule.training.fit import (
    FitResult,
    check_batch_limits,
    evaluation_device,
    fit,
    least_fraction,
    warm_start,
)
from chainrule.training.module import MaximumLikelihood
from chainrule.training.objectives import ArrayObjective, SequenceObjective
from chainrule.training.schedules import (
    CosineOverTime,
    CosineToZero,
    make_adam,
    make_adamw,
    make_optimizer,
    make_sgd,
)
from chainrule.training.sequence_data import (
    BOS_FRACTION,
    DEFAULT_SEQ_LEN,
    EvalChunks,
    TrainChunks,
    sequence_loaders,
)

__all__ = [
    "BOS_FRACTION",
    "DEFAULT_SEQ_LEN",
    "OPTIMIZERS",
    "PRECISIONS",
    "ArrayObjective",
    "CosineOverTime",
    "CosineToZero",
    "EvalChunks",
    "FitResult",
    "MaximumLikelihood",
    "ParameterEMA",
    "SequenceObjective",
    "TrainChunks",
    "TrainConfig",
    "WallClock",
    "check_batch_limits",
    "evaluation_device",
    "fit",
    "least_fraction",
    "load_raw_weights",
    "make_adam",
    "make_adamw",
    "make_optimizer",
    "make_sgd",
    "run_callbacks",
    "sequence_loaders",
    "warm_start",
]
