"""Output files of `sample` and `generate`: where they may go, and writing them safely.

An output file never lands inside a model folder (config.json and weights, such as the
model being sampled: `--out MODEL/weights.safetensors` would destroy it), is never an existing
folder, and needs an existing parent folder (only the file asked for is created). An existing
file is overwritten only with `--force`, as `train` refuses an existing run folder. Files are
written to a temporary file next to the target and renamed into place when complete, so an
interrupted command leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from chainrule.errors import ChainruleError


def is_model_folder(folder: Path) -> bool:
    """A saved model's folder: config.json next to the weights file."""
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def check_output(out: str, force: bool, model_dir: str | None = None) -> Path:
    """`out` as a Path, or a one-line ChainruleError if writing it could lose work."""
    path = Path(out).expanduser()
    resolved = path.resolve()
    if resolved.is_dir():
        raise ChainruleError(f"--out {out} is an existing folder; give a file name")
    if not resolved.parent.is_dir():
        raise ChainruleError(f"--out {out}: the folder {path.parent} does not exist; create it first")
    if model_dir is not None:
        md = Path(model_dir).resolve()
        if resolved == md or md in resolved.parents:
            raise ChainruleError(f"--out {out} is inside the model folder {model_dir}; write elsewhere")
    if is_model_folder(resolved.parent):
        raise ChainruleError(f"--out {out} is inside the model folder {path.parent}; write elsewhere")
    if resolved.exists() and not force:
        raise ChainruleError(f"--out {out} already exists; pass --force to overwrite it")
    return path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temporary file in the same folder, renamed onto
    `path` when the block ends normally and removed if it raises (or is interrupted)."""
    umask = os.umask(0)
    os.umask(umask)
    tmp = None
    try:  # a read-only or unwritable folder fails here too, at the temporary file
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise ChainruleError(f"could not write {path}: {e.strerror or e}") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
