"""Classifier files: `model.safetensors` + `config.json`, as for density models, never pickle.

config.json holds `"classifier": NAME` (not `"model"`, so neither loader mistakes one kind of
folder for the other), the constructor arguments, the sha256 of the weights and any extra
metadata (training history, test accuracy).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from chainrule.errors import ChainruleError
from chainrule.persistence import CONFIG, FORMAT_VERSION, WEIGHTS, atomic_write_bytes, atomic_write_json

CLASSIFIER_REGISTRY: dict[str, type] = {}


def register_classifier(name: str):
    """Class decorator: make a classifier class loadable by `name` from a config.json."""

    def wrap(cls: type) -> type:
        cls.registry_name = name
        CLASSIFIER_REGISTRY[name] = cls
        return cls

    return wrap


def save_classifier(classifier, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the classifier network's weights (safetensors) and its constructor config (JSON)."""
    directory = Path(directory)
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in classifier.net.state_dict().items()}
    data = save_bytes(tensors)
    atomic_write_bytes(directory / WEIGHTS, data, what="classifier weights")
    config = {
        "format_version": FORMAT_VERSION,
        "classifier": classifier.registry_name,
        "args": classifier.config(),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        **(extra or {}),
    }
    atomic_write_json(directory / CONFIG, config, what="classifier config")
    return directory


def read_classifier_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Parse a classifier folder's config.json, refusing density-model folders and broken files."""
    directory = Path(directory)
    path = directory / CONFIG
    if not directory.is_dir():
        raise ChainruleError(f"classifier directory {str(directory)!r} does not exist")
    if not path.is_file():
        raise ChainruleError(f"{path} is missing: not a chainrule classifier directory")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChainruleError(f"{path} is corrupt (not valid JSON: {e})") from None
    if isinstance(config, dict) and "model" in config and "classifier" not in config:
        raise ChainruleError(
            f"{directory} holds a density model ({config['model']!r}), not a classifier; train one with"
            " `chainrule classifier train`"
        )
    if not isinstance(config, dict) or "classifier" not in config or "args" not in config:
        raise ChainruleError(f"{path} lacks the 'classifier' and 'args' entries")
    if config["classifier"] not in CLASSIFIER_REGISTRY:
        raise ChainruleError(
            f"{path} names unknown classifier {config['classifier']!r}; known: {sorted(CLASSIFIER_REGISTRY)}"
        )
    return config


def load_classifier(directory: str | os.PathLike):
    """Rebuild a classifier from `save_classifier`'s output (eval mode), refusing missing, corrupt
    or mismatched files."""
    directory = Path(directory)
    config = read_classifier_config(directory)
    cls = CLASSIFIER_REGISTRY[config["classifier"]]
    try:
        classifier = cls(**config["args"])
    except TypeError as e:
        raise ChainruleError(f"{directory / CONFIG}: bad classifier arguments ({e})") from None
    path = directory / WEIGHTS
    if not path.is_file():
        raise ChainruleError(f"{path} is missing")
    try:
        data = path.read_bytes()
        if config.get("weights_sha256") not in (None, hashlib.sha256(data).hexdigest()):
            raise ChainruleError(
                f"{path} does not match config.json: its sha256 differs (corrupt or truncated)"
            )
        tensors = load_bytes(data)
    except (SafetensorError, OSError) as e:
        raise ChainruleError(f"{path} is corrupt or truncated ({e})") from None
    expected = classifier.net.state_dict()
    if set(expected) != set(tensors) or any(tensors[k].shape != v.shape for k, v in expected.items()):
        raise ChainruleError(f"{path} does not match config.json (other layers or shapes)")
    classifier.net.load_state_dict(tensors)
    classifier.net.eval()
    classifier.training_info = config.get("training", {})
    return classifier
