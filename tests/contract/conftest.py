"""Fixtures of the contract suite: every registered model, built once from its tiny_config()."""

from __future__ import annotations

import pytest
import torch

import chainrule.graphical  # noqa: F401 - registers the graphical and tabular models
import chainrule.models  # noqa: F401 - registers every model family
from chainrule.checks import tiny_model
from chainrule.models.base import MODEL_REGISTRY

#: every registered model name, at collection time (before any test registers a broken model)
REGISTERED = sorted(MODEL_REGISTRY)


@pytest.fixture(scope="session")
def tiny_models():
    """A cache name -> tiny instance, so each model is built once for all its checks."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = tiny_model(name)
        return cache[name]

    torch.set_num_threads(1)
    return get
