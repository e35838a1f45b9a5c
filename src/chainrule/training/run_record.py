"""`run.json`: what a run was started with, so that `--resume` continues the same run or refuses.

At the start of a fresh run `fit` writes the model (class and constructor arguments), a
fingerprint of the data (name, kind, sizes, and the sha256 of a fixed sample of training rows)
and the training keys a checkpoint depends on. A resume compares them with the run it is asked
to continue and refuses any difference, naming the differing keys, before Lightning would fail
on mismatched weights or silently continue with other data.

Keys that may change on resume, by design: `lr`, `grad_clip`, `weight_decay`, `momentum` and
`nesterov` (the way out of a diverged run; the module sets them on the restored optimizer),
`max_epochs`, `max_minutes` and `patience` (train longer), and where the run executes (`devices`,
`num_nodes`, `accelerator`, `strategy`, `num_workers`, `progress`, `precision`, `compile`, the
batch limits), and `ema_decay` (a resume without it continues the averaged run's trained
parameters). The optimizer may not change: its checkpointed state belongs to it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from chainrule.data.arrays import ArraySplit
from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_json
from chainrule.training.config import TrainConfig

RECORD = "run.json"
#: The training keys a checkpoint depends on (its data order, schedule and perturbation).
RESUME_KEYS = ("batch_size", "seed", "optimizer", "lr_schedule", "warmup_steps", "perturb_rate", "seq_len")
#: Values of keys added since run.json existed, for records written before them.
RECORD_DEFAULTS = {"train.optimizer": "adam"}
#: Rows (or stream chunks) of the training split that the fingerprint hashes.
SAMPLED_ROWS = 256


def _spaced_rows(n: int) -> torch.Tensor:
    """`SAMPLED_ROWS` evenly spaced row indices of n rows (all of them when there are fewer)."""
    return torch.linspace(0, n - 1, min(n, SAMPLED_ROWS)).round().long() if n else torch.zeros(0).long()


def _sampled_sha256(x: torch.Tensor | ArraySplit) -> str:
    """sha256 of the shape, dtype and `SAMPLED_ROWS` evenly spaced rows of `x` (cheap for any size,
    a memory-mapped split included: only the sampled rows are read)."""
    if isinstance(x, ArraySplit):  # memory-mapped uint8 rows
        header, sample = f"{tuple(x.shape)} uint8", x.rows(_spaced_rows(x.shape[0]))
    else:
        header = f"{tuple(x.shape)} {x.dtype}"
        if x.dim() == 1:  # a token stream: evenly spaced chunks
            chunk = max(1, min(4096, x.numel() // SAMPLED_ROWS))
            x = x[: (x.numel() // chunk) * chunk].reshape(-1, chunk)
        sample = x[_spaced_rows(x.shape[0])]
    h = hashlib.sha256(header.encode())
    h.update(sample.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(dataset: Any) -> dict[str, Any]:
    """What identifies a dataset's training data for a resume."""
    return {
        "name": dataset.name,
        "num_values": int(dataset.num_values),
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "sizes": [int(len(dataset.train)), int(len(dataset.val))],
        "train_sha256": _sampled_sha256(dataset.train),
    }


def run_record(model: Any, dataset: Any, config: TrainConfig) -> dict[str, Any]:
    """The record of a run (JSON-normalised, so that it compares equal to its saved copy)."""
    record = {
        "model": model.registry_name,
        "model_config": model.config(),
        "data": data_fingerprint(dataset),
        "train": {k: getattr(config, k) for k in RESUME_KEYS},
    }
    return json.loads(json.dumps(record, default=str))


def write_run_record(out: Path, record: dict[str, Any]) -> None:
    atomic_write_json(out / RECORD, record, what="run record")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    flat: dict[str, Any] = {}
    for k, v in d.items():
        flat.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return flat


def _show(v: Any) -> str:
    text = json.dumps(v) if not (isinstance(v, float) and not math.isfinite(v)) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resume(out: Path, record: dict[str, Any]) -> None:
    """Refuse to resume the run in `out` with another model, data or checkpoint-shaping training
    keys, naming the keys that differ. A run from before run.json existed is not checked."""
    path = out / RECORD
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        raise ChainruleError(
            f"--resume: {path} is unreadable; it records what the run was started with"
        ) from None
    old, new = {**RECORD_DEFAULTS, **_flatten(saved)}, _flatten(record)
    keys = sorted(k for k in set(old) | set(new) if old.get(k, "<absent>") != new.get(k, "<absent>"))
    if keys:
        diffs = ", ".join(
            f"{k.replace('model_config.', 'model.')} ({_show(old.get(k))} -> {_show(new.get(k))})"
            for k in keys[:6]
        ) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        raise ChainruleError(
            f"--resume: {out} was started with another model, data or training keys: {diffs}; resume"
            " with the run's own recipe and data, or start a new run (another output folder, or --force)"
        )
