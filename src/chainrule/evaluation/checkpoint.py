"""Resumable evaluation: the log-likelihoods of the batches done so far, kept in one file.

An evaluation can take hours on a CPU (EoNADE's 128 orderings of 784 positions each, a VAE with
thousands of importance samples). Given a checkpoint file, `evaluate_nll` saves every finished
batch's log-likelihoods, and the importance sampler's generator state, atomically; run again with
the same file, it goes on after the last saved batch and reports what one uninterrupted run
would. The file names what it is the checkpoint of (a fingerprint of the model's weights, the
data, the batch size and the options), and a file of another evaluation is refused, not mixed in.
The format is safetensors: reading it never runs code.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_bytes

#: the metadata key holding the fingerprint of the evaluation a checkpoint belongs to
FINGERPRINT_KEY = "chainrule_evaluation"


@dataclass
class EvaluationProgress:
    """Log-likelihoods (float64) of the first `len(log_probs)` examples, and the generator state
    after them (None for an exact likelihood, which draws nothing)."""

    log_probs: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.float64))
    generator_state: torch.Tensor | None = None

    @property
    def done(self) -> int:
        """How many examples are scored."""
        return len(self.log_probs)


def _digest_tensor(h, tensor: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and bytes to the hash `h`."""
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def evaluation_fingerprint(
    model: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None, batch_size: int, options: dict
) -> str:
    """SHA-256 of what decides the numbers: the model's class and state, the data (and condition),
    the batch size (a checkpoint holds whole batches) and the `log_prob` options (a generator by
    its starting state)."""
    h = hashlib.sha256(f"{type(model).__qualname__}|{batch_size}".encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        _digest_tensor(h, tensor)
    for tensor in (x, cond):
        if tensor is not None:
            _digest_tensor(h, tensor)
    for key in sorted(options):
        value = options[key]
        h.update(key.encode())
        if isinstance(value, torch.Generator):
            _digest_tensor(h, value.get_state())
        elif isinstance(value, torch.Tensor):
            _digest_tensor(h, value)
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def load_progress(path: str | os.PathLike, fingerprint: str) -> EvaluationProgress:
    """The progress saved in `path` (nothing done when there is no such file), refused with one
    line when the file is unreadable or belongs to another evaluation."""
    path = Path(path)
    if not path.exists():
        return EvaluationProgress()
    try:
        with safe_open(str(path), "pt") as f:
            saved = (f.metadata() or {}).get(FINGERPRINT_KEY)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ChainruleError(
            f"evaluation checkpoint {path} is not readable ({error}); delete it to start over"
        ) from None
    if saved is None or "log_probs" not in tensors:
        raise ChainruleError(f"{path} is not a chainrule evaluation checkpoint; choose another file")
    if saved != fingerprint:
        raise ChainruleError(
            f"evaluation checkpoint {path} belongs to another evaluation (other weights, data, batch"
            " size or options); delete it or choose another file"
        )
    return EvaluationProgress(tensors["log_probs"].double(), tensors.get("generator_state"))


def save_progress(path: str | os.PathLike, fingerprint: str, progress: EvaluationProgress) -> None:
    """Write `progress` to `path` atomically: a reader (or a killed run) sees the old or the new file."""
    tensors = {"log_probs": progress.log_probs.contiguous()}
    if progress.generator_state is not None:
        tensors["generator_state"] = progress.generator_state
    data = save(tensors, metadata={FINGERPRINT_KEY: fingerprint})
    atomic_write_bytes(path, data, "evaluation checkpoint")
