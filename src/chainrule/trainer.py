"""The one way chainrule builds a `lightning.Trainer`, for density models and classifiers alike.

Both trainers share these conventions: CSV logs under `out/logs` (plus TensorBoard or MLflow when
asked), atomic fsynced checkpoints (`SafeCheckpointIO`), progress as asked (a bar on a terminal,
plain lines otherwise), no model summary, DDP through Lightning's launchers, no distributed sampler
(chainrule.data.loading shards the data itself), and none of Lightning's info chatter (device
lists, tips, "fit stopped") unless CHAINRULE_DEBUG is set.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.imports import _IS_INTERACTIVE
from lightning.pytorch.callbacks import Callback, ProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.strategies import DDPStrategy, Strategy

from chainrule.checkpoint_io import SafeCheckpointIO
from chainrule.errors import ChainruleError, debugging
from chainrule.progress_lines import ProgressLines, TerminalBar

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


#: `train.logger` values -> the pip package each needs (the CSV logs are always written: curves.png
#: is drawn from them).
LOGGERS = {"csv": None, "tensorboard": "tensorboard", "mlflow": "mlflow"}


def check_logger(kind: str) -> None:
    """Refuse an unknown `train.logger`, or one whose package is not installed (naming it)."""
    if not isinstance(kind, str) or kind not in LOGGERS:
        raise ChainruleError(f"train.logger must be one of {list(LOGGERS)}, got {kind!r}")
    package = LOGGERS[kind]
    modules = ("tensorboard", "tensorboardX") if kind == "tensorboard" else (package,)
    if package and not any(importlib.util.find_spec(m) for m in modules):
        raise ChainruleError(f"train.logger={kind} needs the {package} package: pip install {package}")


def make_loggers(kind: str, out: Path | None, version: str = "") -> list[Logger] | bool:
    """The CSV logs, plus TensorBoard (`out/tensorboard/<version>`) or MLflow (the tracking URI of
    MLFLOW_TRACKING_URI, else `out/mlruns`; experiment "chainrule", run named after `out`)."""
    check_logger(kind)
    if out is None:
        return False
    loggers: list[Logger] = [CSVLogger(out, name="logs", version=version)]
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="tensorboard", version=version))
    elif kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        mlruns = str(Path(out) / "mlruns")
        loggers.append(MLFlowLogger(experiment_name="chainrule", run_name=Path(out).name, save_dir=mlruns))
    return loggers


def quiet_lightning() -> None:
    """Lightning logs its device list ("GPU available: False..."), advertising tips (litlogger,
    litmodels), "limit_*_batches was configured" and "`Trainer.fit` stopped" at INFO on its
    `lightning.*` loggers; show only warnings and errors from them (all of it when debugging)."""
    level = logging.INFO if debugging() else logging.WARNING
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)


def progress_callback(progress: bool) -> Callback | None:
    """A tqdm bar when stderr is a terminal, plain lines (`ProgressLines`) otherwise; None when
    progress is off."""
    if not progress:
        return None
    return TerminalBar() if sys.stderr.isatty() else ProgressLines()


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
    logger: str = "csv",
    **options: Any,
) -> L.Trainer:
    """A Trainer with chainrule's conventions (module docstring); `logger` is "csv", "tensorboard"
    or "mlflow" (`LOGGERS`); `options` are further `lightning.Trainer` arguments (precision,
    gradient clipping, batch limits...)."""
    quiet_lightning()
    given = any(isinstance(c, ProgressBar) for c in callbacks)  # a caller's own progress display wins
    bar = None if given else progress_callback(progress)
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=make_strategy(strategy, devices * num_nodes),
        plugins=[SafeCheckpointIO()],
        use_distributed_sampler=False,
        max_epochs=max_epochs,
        max_time={"minutes": max_minutes} if max_minutes else None,
        logger=make_loggers(logger, out, log_version),
        callbacks=[*callbacks, bar] if bar is not None else callbacks,
        enable_progress_bar=given or bar is not None,
        enable_model_summary=False,
        default_root_dir=out,
        **options,
    )


@contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence Lightning's advice that does not apply to chainrule's runs (worker counts, precision
    notes, lengths of iterable datasets, short epochs), and torch's deprecation of `LeafSpec`, which
    Lightning's own code still calls."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\).*", FutureWarning)
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*precision.*")
        warnings.filterwarnings("ignore", ".*IterableDataset. has .__len__. defined.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        yield
