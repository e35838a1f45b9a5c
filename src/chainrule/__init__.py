"""chainrule: likelihood-based generative models with exact log-likelihoods and fast sampling.

Top-level names are imported lazily so that `chainrule --help` starts fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ChainruleError": "chainrule.errors",
    "TrainConfig": "chainrule.training",
    "FitResult": "chainrule.training",
    "fit": "chainrule.training",
    "evaluate": "chainrule.evaluation",
    "evaluate_nll": "chainrule.evaluation",
    "load": "chainrule.persistence",
    "save": "chainrule.persistence",
    "load_dataset": "chainrule.data",
    "models": "chainrule.models",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if name == "models" else getattr(module, name)
