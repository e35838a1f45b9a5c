"""The one way chainrule builds a `lightning.Trainer`, for density models and classifiers alike.

Both trainers share these conventions: CSV logs under `out/logs`, atomic fsynced checkpoints
(`SafeCheckpointIO`), the progress bar as asked, no model summary, DDP through Lightning's
launchers, and no distributed sampler (chainrule.data.loading shards the data itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.imports import _IS_INTERACTIVE
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy, Strategy

from chainrule.checkpoint_io import SafeCheckpointIO

#: Lightning's DDP launchers: "popen" re-runs the command once per extra process (the CLI, torchrun
#: and SLURM all work with it); "spawn"/"fork" start workers from this Python process.
STRATEGIES = {"auto": None, "ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork"}


def make_strategy(strategy: str, world: int) -> str | Strategy:
    """Lightning's DDP for more than one process (gloo on CPU, NCCL on GPU), else "auto".

    Buffers are not broadcast: chainrule's buffers (MADE masks and degrees) are the same on every
    process by construction, and validation batches may differ in number between processes."""
    if strategy == "auto" and world == 1:
        return "auto"
    start = STRATEGIES[strategy] or ("fork" if _IS_INTERACTIVE else "popen")
    return DDPStrategy(start_method=start, forward_sync_buffers=False)


def seed_run(seed: int) -> None:
    """Seed Python, NumPy and torch (and data-loader workers) for a reproducible run."""
    L.seed_everything(seed, workers=True, verbose=False)


def csv_logger(out: Path | None, version: str = "") -> CSVLogger | bool:
    """CSV logs in `out/logs/<version>` (none without `out`)."""
    return CSVLogger(out, name="logs", version=version) if out is not None else False


def make_trainer(
    out: Path | None,
    callbacks: list[Callback],
    *,
    max_epochs: int,
    max_minutes: float | None = None,
    progress: bool = True,
    accelerator: str = "cpu",
    devices: int = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    log_version: str = "",
    **options: Any,
) -> L.Trainer:
    """A Trainer with chainrule's conventions (module docstring); `options` are further
    `lightning.Trainer` arguments (precision, gradient clipping, batch limits...)."""
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=make_strategy(strategy, devices * num_nodes),
        plugins=[SafeCheckpointIO()],
        use_distributed_sampler=False,
        max_epochs=max_epochs,
        max_time={"minutes": max_minutes} if max_minutes else None,
        logger=csv_logger(out, log_version),
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=out,
        **options,
    )


@contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence Lightning's advice that does not apply to chainrule's runs (worker counts, precision
    notes, lengths of iterable datasets, short epochs)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*precision.*")
        warnings.filterwarnings("ignore", ".*IterableDataset. has .__len__. defined.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        yield
