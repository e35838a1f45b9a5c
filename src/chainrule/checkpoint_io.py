"""Lightning checkpoint files (`.ckpt`, for resuming a run only), written and read safely.

Lightning's own writer renames a temporary file into place but never fsyncs it, so after a power
loss the new name can point at an empty file; and a full disk surfaces as a bare OSError from
deep inside the trainer. `SafeCheckpointIO` writes through `atomic_write_bytes` (temporary file,
fsync, rename, fsync of the folder): an interrupted or failed save leaves the previous checkpoint
as it was, and the error says so. Reading refuses truncated or corrupt files with a clear error
and never unpickles code (`weights_only=True`).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from chainrule.errors import ChainruleError, first_line
from chainrule.persistence import atomic_write_bytes


class SafeCheckpointIO(TorchCheckpointIO):
    """torch.save into memory, then an atomic, fsynced write; failures name the file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getbuffer(), what="checkpoint")

    def load_checkpoint(
        self, path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """A `.ckpt` as a dict of tensors and plain values; a clear error if it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        # torch.save always writes a zip archive; anything else would go to torch's legacy
        # unpickler, which on damaged bytes can raise almost any exception type.
        _refuse_damaged(path, "not a zip archive, as torch.save writes")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - the unpickler's failures on damaged bytes are open-ended
        _refuse_damaged(path, first_line(e, type(e).__name__)[:200])
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ChainruleError(f"checkpoint {path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def _refuse_damaged(path: Path, why: str) -> None:
    raise ChainruleError(
        f"checkpoint {path} is corrupt or truncated ({why}); restore it, or delete it to start the run again"
    )
