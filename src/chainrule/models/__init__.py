"""Model families; importing this package registers every model for `load`."""

from chainrule.models.autoregressive import AutoregressiveModel
from chainrule.models.base import MODEL_REGISTRY, Model, build_model, register_model
from chainrule.models.fvsbn import FVSBN
from chainrule.models.made import MADE
from chainrule.models.nade import NADE

__all__ = [
    "AutoregressiveModel",
    "FVSBN",
    "MADE",
    "MODEL_REGISTRY",
    "Model",
    "NADE",
    "build_model",
    "register_model",
]
