"""`fit`: maximum-likelihood training of any chainrule model on array data or token streams.

`fit(model, dataset, TrainConfig(...), out_dir)` gives a progress bar, checkpoints (last + best,
written atomically and fsynced by `SafeCheckpointIO`), resume, early stopping on validation NLL,
CSV logs and a PNG of the learning curves, and finally writes the best model as safetensors + JSON
with a metrics.json (the test split's NLL too with `test=True`). With `devices`/`num_nodes` > 1 it
runs Lightning's DDP (gloo on CPU, NCCL on GPU), launched by Lightning itself, by torchrun or under
SLURM (docs/distributed.md); `batch_size` is the global batch, and a W-process run follows the same
minibatches as a 1-process run (chainrule.data.loading).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from chainrule.allocator import allocations_kept
from chainrule.checkpoint_io import read_checkpoint
from chainrule.data.base import Dataset
from chainrule.data.loading import VAL_BATCH, SplitsData
from chainrule.data.text import SequenceDataset
from chainrule.denormals import denormals_flushed
from chainrule.errors import ChainruleError
from chainrule.evaluation import held_out_metrics, models_sequences, split_condition
from chainrule.models.base import Model
from chainrule.persistence import atomic_write_json, load, save
from chainrule.trainer import make_trainer, quiet_fit, seed_run
from chainrule.training.callbacks import run_callbacks
from chainrule.training.config import TrainConfig, check_accelerator
from chainrule.training.module import MaximumLikelihood
from chainrule.training.objectives import ArrayObjective, SequenceObjective, check_dataset_values
from chainrule.training.run_folder import claim_run_folder, launch_rank
from chainrule.training.run_record import check_resume, run_record, write_run_record
from chainrule.training.sequence_data import sequence_loaders


@dataclass
class FitResult:
    """What `fit` returns: the run folder, the saved best model's folder, the best validation NLL
    (nats), the number of epochs run, the training wall time in seconds (across resumes), and the
    metrics written to `model_dir/metrics.json` (with the test reports when `fit(test=True)`)."""

    out_dir: Path
    model_dir: Path
    best_val_nll: float
    epochs: int
    train_seconds: float
    is_main: bool = True  # False on the other processes of a distributed run (they write nothing)
    metrics: dict[str, Any] | None = None


def fit(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike = "runs/latest",
    *,
    resume: bool = False,
    extra_metadata: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
    test: bool = False,
    test_runs: dict[str, dict[str, Any]] | None = None,
    force: bool = False,
) -> FitResult:
    """Train `model` on `dataset` by maximum likelihood; write checkpoints, logs, curves, the best
    model (`out_dir/model`) and its metrics.json. With `resume=True`, continue from
    `out_dir/checkpoints/last.ckpt`. `callbacks` are extra Lightning callbacks. With `test=True`,
    also evaluate the best model on the test split (where it trained: the GPU when training used
    one) and record it in metrics.json under "test", plus one entry per item of `test_runs`
    (name -> log_prob options, a recipe's `evaluate` section), as `chainrule train` does.

    The run folder is claimed first (chainrule.training.run_folder): an existing run there is
    refused unless `resume` (which must continue the same model, data and checkpoint-shaping
    training keys: run_record) or `force` (which replaces it), and a second concurrent writer
    is refused by a lock file. Denormal floats are flushed to zero while it trains (see
    chainrule.denormals: they made long CPU runs several times slower), and freed memory is kept
    for the next step rather than given back to the kernel (chainrule.allocator: image models'
    CPU steps spent up to a quarter of their time in page faults)."""
    config = (config or TrainConfig()).check()
    check_accelerator(config.accelerator, config.devices)
    out = Path(out_dir)
    with (
        claim_run_folder(out, resume=resume, force=force, devices=config.devices),
        denormals_flushed(),
        allocations_kept(),
    ):
        return _fit(model, dataset, config, out, resume, extra_metadata, callbacks, test, test_runs)


def _fit(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig,
    out: Path,
    resume: bool,
    extra_metadata: dict[str, Any] | None,
    callbacks: list[Callback] | None,
    test: bool,
    test_runs: dict[str, dict[str, Any]] | None,
) -> FitResult:
    """`fit` inside its claimed run folder."""
    last = _check_run_folder(out, resume, config.max_epochs)
    if launch_rank(config.devices) == 0:
        record = run_record(model, dataset, config)
        check_resume(out, record) if resume else write_run_record(out, record)
    _prepare(model, dataset, config, resume)
    module, loaders = _module_and_loaders(model, dataset, config, last)
    streams = None if "datamodule" in loaders else (loaders["train_dataloaders"], loaders["val_dataloaders"])
    check_batch_limits(config, dataset, streams)
    best, clock, run_cbs = run_callbacks(config, out)
    module.clock = clock  # read by the cosine-time schedule
    trainer = make_trainer(
        out,
        [*run_cbs, *(callbacks or [])],
        max_epochs=config.max_epochs,
        max_minutes=config.max_minutes,
        progress=config.progress,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        log_version=f"part{len(list((out / 'logs').glob('part*')))}",
        logger=config.logger,
        precision=config.precision,
        gradient_clip_val=config.grad_clip,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches,
        log_every_n_steps=50,
    )
    if trainer.is_global_zero:  # temporary files of a save that was killed midway
        for stale in last.parent.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
    with quiet_fit():
        trainer.fit(module, **loaders, ckpt_path=str(last) if resume else None)
    if trainer.global_rank != 0:
        return FitResult(out, out / "model", float("nan"), trainer.current_epoch, clock.seconds(), False)
    best_path = Path(best.best_model_path) if best.best_model_path else last
    module.load_state_dict(read_checkpoint(best_path)["state_dict"])
    result = _save_best(model, dataset, config, out, trainer, best, clock.seconds(), extra_metadata)
    result.metrics = _write_metrics(model, dataset, config, result, test, test_runs)
    return result


def _check_run_folder(out: Path, resume: bool, max_epochs: int) -> Path:
    """Refuse to resume without a checkpoint or to start over an existing run (`out` exists: the
    claim made it, or rank 0 did). Returns the path of last.ckpt."""
    out.mkdir(parents=True, exist_ok=True)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ChainruleError(f"--resume: no checkpoint at {last}; start without --resume")
    if not resume and last.is_file():
        raise ChainruleError(
            f"{out} already holds a run (checkpoints/last.ckpt); pass --resume to continue it or"
            " choose another output folder"
        )
    if resume:  # a damaged checkpoint is refused before anything starts
        done = read_checkpoint(last).get("epoch")
        if isinstance(done, int) and done + 1 > max_epochs:
            raise ChainruleError(
                f"--resume: {last} ends epoch {done} of its run, past train.max_epochs={max_epochs};"
                f" set train.max_epochs to {done + 2} or more to train further"
            )
    return last


def _prepare(model: Model, dataset: Dataset | SequenceDataset, config: TrainConfig, resume: bool) -> None:
    """Seed, switch the model's own compiled kernels, warm-start, and refuse data that cannot work."""
    seed_run(config.seed)
    if model.compiles_itself:
        model.set_compiled(bool(config.compile))
    if config.init_from and not resume:
        warm_start(model, config.init_from)
    if len(dataset.train) < config.batch_size:
        raise ChainruleError(
            f"the training split has {len(dataset.train)} examples, fewer than train.batch_size="
            f"{config.batch_size} (incomplete batches are dropped): lower train.batch_size"
        )
    model.train()  # Lightning keeps the mode it finds; an eval-mode model would train wrongly
    streams = isinstance(dataset, SequenceDataset)
    if config.perturb_rate and (streams or dataset.num_values < 2):
        kind = "a token stream" if streams else "continuous"
        raise ChainruleError(
            f"train.perturb_rate={config.perturb_rate} needs array data of discrete values (binary or"
            f" K-level); dataset {dataset.name!r} is {kind}"
        )
    if not streams and models_sequences(model):
        raise ChainruleError(
            f"{model.registry_name!r} models token streams; dataset {dataset.name!r} holds arrays"
        )


def _module_and_loaders(
    model: Model, dataset: Dataset | SequenceDataset, config: TrainConfig, last: Path
) -> tuple[MaximumLikelihood, dict[str, Any]]:
    """The LightningModule with the objective for the data, and `trainer.fit`'s data arguments."""
    if isinstance(dataset, SequenceDataset):  # text or audio: chunks of one long token stream
        train_dl, val_dl = sequence_loaders(model, dataset, config)
        objective: Any = SequenceObjective(model, dataset.unit, compile=bool(config.compile))
        loaders: dict[str, Any] = {"train_dataloaders": train_dl, "val_dataloaders": val_dl}
    else:
        labels = None
        if model.class_conditional:
            labels = {s: split_condition(model, dataset, s) for s in ("train", "val")}
        objective = ArrayObjective(
            model,
            config,
            dataset.dynamic_binarization,
            labels,
            dataset.num_values,
            values_checked=check_dataset_values(model, dataset),
        )
        data = SplitsData(dataset.train, dataset.val, config.batch_size, config.seed, config.num_workers)
        loaders = {"datamodule": data}
    return MaximumLikelihood(model, config, objective, checkpoint=last), loaders


def _save_best(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig,
    out: Path,
    trainer: L.Trainer,
    best: ModelCheckpoint,
    seconds: float,
    extra_metadata: dict[str, Any] | None,
) -> FitResult:
    """Save the (already loaded) best model with its training metadata, and plot the curves."""
    model.eval()
    meta = {
        "dataset": dataset.name,
        "train_config": asdict(config),
        "best_val_nll": float(best.best_model_score) if best.best_model_score is not None else None,
        "epochs": trainer.current_epoch,
        "train_seconds": seconds,
        "num_parameters": model.num_parameters(),
        "num_free_parameters": model.num_free_parameters(),
        **({"columns": dataset.columns} if getattr(dataset, "columns", None) else {}),
        **(extra_metadata or {}),
    }
    model_dir = save(model, out / "model", extra={"training": meta})
    from chainrule.report import plot_curves  # matplotlib: imported only when a run ends

    plot_curves(out / "logs", out / "curves.png", title=f"{model.registry_name} on {dataset.name}")
    return FitResult(out, model_dir, meta["best_val_nll"] or float("nan"), trainer.current_epoch, seconds)


def _write_metrics(
    model: Model,
    dataset: Dataset | SequenceDataset,
    config: TrainConfig,
    result: FitResult,
    test: bool,
    test_runs: dict[str, dict[str, Any]] | None,
) -> dict[str, Any]:
    """metrics.json beside the saved model: the run's summary and, with `test`, the test reports
    (computed where training ran; the model is handed back on the CPU)."""
    metrics: dict[str, Any] = {
        "model": model.registry_name,
        "dataset": dataset.name,
        "best_val_nll": result.best_val_nll if math.isfinite(result.best_val_nll) else None,
        "epochs": result.epochs,
        "train_seconds": round(result.train_seconds, 1),
        "num_parameters": model.num_parameters(),
        "num_free_parameters": model.num_free_parameters(),
    }
    if test:
        model.to(evaluation_device(config.accelerator))
        try:
            metrics.update(held_out_metrics(model, dataset, test_runs))
        finally:
            model.cpu()
    atomic_write_json(result.model_dir / "metrics.json", metrics)  # non-finite values: null
    bad = non_finite_keys(metrics)
    if bad:
        raise ChainruleError(
            f"the run ended but {', '.join(bad[:4])} is not a finite number (metrics.json records null);"
            f" the model is saved in {result.model_dir}: check the data and the model before using it"
        )
    return metrics


def non_finite_keys(d: Any, prefix: str = "") -> list[str]:
    """The dotted keys of `d` whose values are NaN or infinite floats."""
    if isinstance(d, dict):
        return [k for key, v in d.items() for k in non_finite_keys(v, f"{prefix}{key}.")]
    if isinstance(d, float) and not math.isfinite(d):
        return [prefix.rstrip(".")]
    return []


def evaluation_device(accelerator: str) -> str:
    """Where a run computes its test NLL: "cuda" when training used a GPU (accelerator gpu/cuda,
    or auto with CUDA available), else "cpu"."""
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if on_gpu else "cpu"


def check_batch_limits(
    config: TrainConfig, dataset: Dataset | SequenceDataset, loaders: tuple[Any, Any] | None
) -> None:
    """Refuse a fractional `limit_train_batches`/`limit_val_batches` that selects no batch (which
    Lightning reports as a bare MisconfigurationException), naming the sizes and the least
    fraction that works. `loaders`: a sequence model's (train, val) loaders, else None."""
    world = config.devices * config.num_nodes
    if loaders is None:  # array data: global training batches; this process's validation batches
        n_val = len(dataset.val) // world  # the process with the fewest examples
        sizes = {
            "limit_train_batches": (
                len(dataset.train) // config.batch_size,
                f"the training split has {len(dataset.train):,} examples in batches of"
                f" train.batch_size={config.batch_size}",
            ),
            "limit_val_batches": (
                math.ceil(n_val / VAL_BATCH),
                f"the validation split has {len(dataset.val):,} examples"
                + (f" ({n_val:,} on each of {world} processes)" if world > 1 else "")
                + f", scored in batches of {VAL_BATCH:,}",
            ),
        }
    else:
        train_dl, val_dl = loaders
        sizes = {
            "limit_train_batches": (len(train_dl), "one pass over the training text"),
            "limit_val_batches": (
                len(val_dl),
                f"the validation text of {dataset.val.numel():,} tokens is scored in chunks",
            ),
        }
    for key, (batches, what) in sizes.items():
        limit = getattr(config, key)
        if isinstance(limit, float) and batches > 0 and int(batches * limit) == 0:
            raise ChainruleError(
                f"train.{key}={limit} selects no batch: {what} ({batches:,} batch{'es' * (batches != 1)}),"
                f" and {limit} x {batches:,} < 1; use train.{key}={least_fraction(batches)!r} or more (or an"
                " integer number of batches, such as 1)"
            )


def least_fraction(batches: int) -> float:
    """A short decimal f >= 1 / batches (within 5 %) with int(batches * f) >= 1."""
    for digits in range(1, 12):
        f = math.ceil(10**digits / batches) / 10**digits
        if int(batches * f) >= 1 and f <= 1.05 / batches:
            return f
    return 1.0


def warm_start(model: Model, model_dir: str | os.PathLike) -> None:
    """Start `model` from a saved model's parameters, and its buffers where their shapes agree
    (`Model.warm_start_state`: a MADE's weights only mean something with their mask degrees)."""
    source = load(model_dir)
    try:
        state = model.warm_start_state(source.state_dict())
    except ChainruleError as error:
        raise ChainruleError(f"train.init_from={model_dir}: {error}") from None
    model.load_state_dict(state)
