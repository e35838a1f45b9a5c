"""Model families; importing this package registers every model for `load`."""

from chainrule.models.autoregressive import AutoregressiveModel
from chainrule.models.base import MODEL_REGISTRY, Model, build_model, register_model
from chainrule.models.char_rnn import CharRNN
from chainrule.models.fvsbn import FVSBN
from chainrule.models.made import MADE
from chainrule.models.nade import NADE
from chainrule.models.sequence import SequenceModel
from chainrule.models.transformer import CausalTransformer
from chainrule.models.wavenet import WaveNet

__all__ = [
    "AutoregressiveModel",
    "CausalTransformer",
    "CharRNN",
    "FVSBN",
    "MADE",
    "MODEL_REGISTRY",
    "Model",
    "NADE",
    "SequenceModel",
    "WaveNet",
    "build_model",
    "register_model",
]
