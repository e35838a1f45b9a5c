"""Model files: `model.safetensors` + `config.json`. Nothing is ever unpickled from a model file.

Writes are atomic (temporary file, fsync, rename, fsync of the folder) so a crash never leaves a
half-written model; config.json records the sha256 of the weights, so any later damage to them
is refused on load.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_bytes

from chainrule.errors import ChainruleError
from chainrule.models.base import MODEL_REGISTRY, Model, build_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 1


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
    """Write `obj` as indented, key-sorted JSON, atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), what)


def save(model: Model, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the model's weights and buffers (safetensors) and its constructor config (JSON)."""
    from safetensors.torch import save as save_bytes

    directory = Path(directory)
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
    data = save_bytes(tensors)
    atomic_write_bytes(directory / WEIGHTS, data, what="model weights")
    config = {
        "format_version": FORMAT_VERSION,
        "model": model.registry_name,
        "args": model.config(),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        **(extra or {}),
    }
    atomic_write_json(directory / CONFIG, config, what="model config")
    return directory


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a model directory's config.json."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ChainruleError(f"model directory {str(directory)!r} does not exist")
    path = directory / CONFIG
    if not path.is_file():
        raise ChainruleError(f"{path} is missing: not a chainrule model directory")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChainruleError(f"{path} is corrupt (not valid JSON: {e})") from None
    if not isinstance(config, dict) or "model" not in config or "args" not in config:
        raise ChainruleError(f"{path} lacks the 'model' and 'args' entries")
    if config["model"] not in MODEL_REGISTRY:
        raise ChainruleError(
            f"{path} names unknown model {config['model']!r}; known: {sorted(MODEL_REGISTRY)}"
        )
    return config


def load(directory: str | os.PathLike) -> Model:
    """Rebuild a model from `save`'s output, refusing missing, corrupt or mismatched files."""
    directory = Path(directory)
    config = read_config(directory)
    model = build_model(config["model"], **config["args"])
    path = directory / WEIGHTS
    if not path.is_file():
        raise ChainruleError(f"{path} is missing")
    try:
        data = path.read_bytes()
        expected_sha = config.get("weights_sha256")
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
    expected = model.state_dict()
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
        model.to(float_dtypes.pop())  # keep the saved precision (bit-exact round trip)
        expected = model.state_dict()
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})
    model.eval()
    return model
