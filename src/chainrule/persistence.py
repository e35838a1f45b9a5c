"""Everything chainrule saves (density models and classifiers): `model.safetensors` + `config.json`.

One registry rebuilds either: config.json names the kind ("model": a registered density model,
"classifier": a class registered with `register_classifier`) and the constructor arguments.
Nothing is ever unpickled from a saved folder.

Writes are atomic (temporary file, fsync, rename, fsync of the folder) so a crash never leaves a
half-written model; config.json records the sha256 of the weights, so any later damage to them
is refused on load.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from chainrule.errors import ChainruleError, first_line
from chainrule.models.base import MODEL_REGISTRY, Model, build_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 1
KINDS = ("model", "classifier")

#: Classifiers that `load` can rebuild, by name. This layer sits below chainrule.classifiers, so the
#: classes enter it themselves, through the `register_classifier` decorator.
CLASSIFIER_REGISTRY: dict[str, type] = {}


def register_classifier(name: str):
    """Class decorator: make a classifier class loadable by `name` from a config.json. The class
    keeps its network in `.net` (an nn.Module) and its constructor arguments in `config()`."""

    def wrap(cls: type) -> type:
        cls.registry_name = name
        CLASSIFIER_REGISTRY[name] = cls
        return cls

    return wrap


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview, what: str = "file") -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one:
    temporary file in the same folder, fsync, rename, fsync of the folder. A failed write (full
    disk, quota, permissions) removes the temporary file and raises a ChainruleError that says the
    previous file is intact."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared model files unreadable
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_folder(path.parent)
    except OSError as e:
        reason = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "the write failed"
        kept = f"the previous {what} there is intact" if path.exists() else f"no {what} was written"
        raise ChainruleError(f"could not save {what} {path}: {reason} ({e.strerror or e}); {kept}") from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike, obj: Any, what: str = "file") -> None:
    """Write `obj` as indented, key-sorted JSON, atomically (see `atomic_write_bytes`). NaN and
    infinities, which JSON cannot hold, are written as null: a file never shows them as numbers."""
    text = json.dumps(finite_json(obj), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode(), what)


def finite_json(obj: Any) -> Any:
    """`obj` with every non-finite float (in dicts, lists and tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def _kind(obj: Any) -> str:
    """ "model" for a density model, "classifier" for a registered classifier."""
    if isinstance(obj, Model):
        return "model"
    if CLASSIFIER_REGISTRY.get(getattr(obj, "registry_name", None)) is type(obj):
        return "classifier"
    raise ChainruleError(
        f"cannot save a {type(obj).__name__}: not a chainrule model or registered classifier"
    )


def _weights_module(obj: Any, kind: str) -> nn.Module:
    """The module whose state is saved: the model itself, or a classifier's network."""
    return obj if kind == "model" else obj.net


def save(obj: Any, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write a model's (or a classifier network's) weights and buffers (safetensors) and its
    constructor config (JSON, with the weights' sha256 and any `extra` metadata), atomically."""
    kind = _kind(obj)
    directory = Path(directory)
    state = _weights_module(obj, kind).state_dict()
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in state.items()}
    data = save_bytes(tensors)
    atomic_write_bytes(directory / WEIGHTS, data, what=f"{kind} weights")
    config = {
        "format_version": FORMAT_VERSION,
        kind: obj.registry_name,
        "args": obj.config(),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        **(extra or {}),
    }
    atomic_write_json(directory / CONFIG, config, what=f"{kind} config")
    return directory


def folder_path(directory: object, what: str = "model") -> Path:
    """`directory` as a Path, refusing what is not a path (a number, None) in one line."""
    if not isinstance(directory, (str, os.PathLike)):
        raise ChainruleError(f"a {what} directory must be a path, got {type(directory).__name__}")
    return Path(directory)


def read_config(directory: str | os.PathLike, kind: str | None = "model") -> dict[str, Any]:
    """Parse and check a saved folder's config.json; `kind` ("model", "classifier", or None for
    either) refuses folders of the other kind with a message that says what they hold."""
    what = kind or "model"
    directory = folder_path(directory, what)
    if not directory.is_dir():
        raise ChainruleError(f"{what} directory {str(directory)!r} does not exist")
    path = directory / CONFIG
    if not path.is_file():
        if (directory / "model" / CONFIG).is_file():  # a training run's folder: its model is inside
            raise ChainruleError(f"{directory} is a training run; its {what} is {directory / 'model'}")
        raise ChainruleError(f"{path} is missing: not a chainrule {what} directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChainruleError(f"{path} is corrupt (not valid JSON: {e})") from None
    except RecursionError:
        raise ChainruleError(f"{path} is corrupt (nested too deeply)") from None
    except OSError as e:
        raise ChainruleError(f"cannot read {path}: {e.strerror or e}") from None
    if not isinstance(config, dict):
        raise ChainruleError(f"{path} must hold a JSON object, got {type(config).__name__}")
    found = saved_kind(config)
    if kind == "classifier" and found == "model":
        raise ChainruleError(
            f"{directory} holds a density model ({config['model']!r}), not a classifier; train one with"
            " `chainrule classifier train`"
        )
    if kind == "model" and found == "classifier":
        raise ChainruleError(
            f"{directory} holds a classifier ({config['classifier']!r}), not a density model"
        )
    if found is None or "args" not in config:
        raise ChainruleError(f"{path} lacks the '{what}' and 'args' entries")
    check_config_types(config, found, path)
    register_everything()
    registry = MODEL_REGISTRY if found == "model" else CLASSIFIER_REGISTRY
    if config[found] not in registry:
        raise ChainruleError(f"{path} names unknown {found} {config[found]!r}; known: {sorted(registry)}")
    return config


#: The type of each entry of config.json that `load` reads (others, such as "training", are
#: metadata that loading does not use, except a classifier's "training", which must be an object).
CONFIG_TYPES: dict[str, tuple[type, str]] = {
    "model": (str, "a model name"),
    "classifier": (str, "a classifier name"),
    "args": (dict, "an object of constructor arguments"),
    "weights_sha256": (str, "a sha256 hex digest"),
    "format_version": (int, "an integer"),
    "training": (dict, "an object"),
}


def check_config_types(config: dict[str, Any], kind: str, path: Path) -> None:
    """Refuse a config.json whose entries have the wrong type, naming the entry."""
    for key, (typ, what) in CONFIG_TYPES.items():
        if key in config and (not isinstance(config[key], typ) or isinstance(config[key], bool)):
            raise ChainruleError(f"{path}: '{key}' must be {what}, got {json.dumps(config[key])[:60]}")
    version = config.get("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION or version < 1:
        raise ChainruleError(
            f"{path}: format_version {version} is not one this chainrule reads (1..{FORMAT_VERSION});"
            " upgrade chainrule"
        )
    sha = config.get("weights_sha256")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise ChainruleError(f"{path}: 'weights_sha256' must be 64 lowercase hex digits, got {sha[:70]!r}")
    bad = [k for k in config["args"] if not k.isidentifier()]
    if bad:
        raise ChainruleError(f"{path}: 'args' has keys that are not argument names: {bad[:3]}")


def saved_kind(config: Any) -> str | None:
    """What a parsed config.json describes: "model", "classifier", or None."""
    if not isinstance(config, dict):
        return None
    return next((k for k in KINDS if k in config), None)


#: The packages whose classes register themselves for `load` (imported by name: they sit in the
#: layers above persistence, which must not import them, as a plug-in registry is filled)
REGISTERING_PACKAGES = ("chainrule.models", "chainrule.graphical", "chainrule.classifiers")


def register_everything() -> None:
    """Import every package that registers saved classes, so `load` knows all their names."""
    for package in REGISTERING_PACKAGES:
        importlib.import_module(package)


def _build(config: dict[str, Any], found: str, directory: Path) -> Any:
    """The model or classifier a checked config.json describes, with fresh weights."""
    if found == "model":
        return build_model(config["model"], **config["args"])
    try:
        obj = CLASSIFIER_REGISTRY[config["classifier"]](**config["args"])
    except ChainruleError:
        raise
    except (TypeError, ValueError, OverflowError, RuntimeError, MemoryError) as e:
        raise ChainruleError(
            f"{directory / CONFIG}: bad classifier arguments"
            f" ({first_line(e, 'not enough memory for its sizes')})"
        ) from None
    obj.training_info = config.get("training", {})
    return obj


def load(directory: str | os.PathLike, kind: str | None = None) -> Any:
    """Rebuild what `save` wrote (a model, or a classifier, in eval mode), refusing missing, corrupt
    or mismatched files; `kind` ("model" or "classifier") refuses the other kind."""
    config = read_config(directory, kind)  # refuses what is not a path
    directory = Path(directory)
    found = saved_kind(config)
    obj = _build(config, found, directory)
    sha = config.get("weights_sha256")
    if sha is None:
        raise ChainruleError(
            f"{directory / CONFIG} records no weights_sha256, so its weights cannot be checked for damage;"
            f' if you trust {directory}, re-save it with: python -c "from chainrule.persistence import'
            f" rehash; rehash('{directory}')\""
        )
    module = _weights_module(obj, found)
    _load_weights(module, directory / WEIGHTS, sha)
    refuse_non_finite_weights(module, directory / WEIGHTS)
    return obj


def refuse_non_finite_weights(module: nn.Module, where: Path) -> None:
    """A model with NaN or infinite parameters gives NaN likelihoods and meaningless samples (all
    zeros, say) without a word: refuse it when it is loaded. A diverged training leaves such
    weights; the checksum cannot catch them, since they were saved that way."""
    for name, p in module.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            n = int((~torch.isfinite(p)).sum())
            raise ChainruleError(
                f"{where}: parameter {name} holds {n:,} NaN or infinite value(s); the model is broken"
                " (a diverged training run leaves such weights) and cannot be used"
            )


def rehash(directory: str | os.PathLike) -> str:
    """Record the sha256 of `directory`'s weights in its config.json (for folders saved without
    one). The weights must load (names and shapes match the config); nothing else changes.
    Loading refuses a folder without the sha256 rather than warn, because a warning scrolls by
    while damaged weights would load silently, and re-saving is one command, once. Returns the
    digest."""
    directory = Path(directory)
    config = read_config(directory, kind=None)
    found = saved_kind(config)
    obj = _build(config, found, directory)
    data = (directory / WEIGHTS).read_bytes() if (directory / WEIGHTS).is_file() else b""
    digest = hashlib.sha256(data).hexdigest()
    _load_weights(_weights_module(obj, found), directory / WEIGHTS, digest)
    if config.get("weights_sha256") not in (None, digest):
        raise ChainruleError(
            f"{directory / WEIGHTS} does not match the weights_sha256 in its config.json: the weights"
            " changed since they were saved; rehash only folders without one"
        )
    atomic_write_json(directory / CONFIG, {**config, "weights_sha256": digest}, what="model config")
    return digest


def _load_weights(module: nn.Module, path: Path, expected_sha: str | None) -> None:
    """Fill `module` from a safetensors file (checked against its sha256, names and shapes) and put
    it in eval mode."""
    if not path.is_file():
        raise ChainruleError(f"{path} is missing")
    try:
        data = path.read_bytes()
        if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
            raise ChainruleError(
                f"{path} does not match config.json: its sha256 differs (the file is corrupt or"
                " truncated, or comes from another model)"
            )
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError) as e:
        if isinstance(e, ChainruleError):
            raise
        raise ChainruleError(f"{path} is corrupt or truncated ({e})") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ChainruleError(
            f"{path} does not match config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for k, v in expected.items():
        if tensors[k].shape != v.shape:
            raise ChainruleError(
                f"{path} does not match config.json: {k} has shape {tuple(tensors[k].shape)},"
                f" expected {tuple(v.shape)}"
            )
    float_dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(float_dtypes) == 1:
        module.to(float_dtypes.pop())  # keep the saved precision (bit-exact round trip)
        expected = module.state_dict()
    module.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})
    module.eval()


def save_classifier(
    classifier: Any, directory: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """`save` for a classifier (kept: many callers use this name)."""
    return save(classifier, directory, extra)


def load_classifier(directory: str | os.PathLike) -> Any:
    """`load(directory, kind="classifier")` (kept: many callers use this name)."""
    return load(directory, kind="classifier")
