"""Training progress as plain lines, for logs, CI and pipes, where a progress bar's carriage returns
and redraws become noise: one line per epoch (epoch, step, losses, validation metrics, elapsed
time), one at least every `every_seconds` within a long epoch, and one when early stopping ends
the run. `chainrule.trainer` uses it in place of a progress bar when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from lightning.pytorch.callbacks import EarlyStopping, ProgressBar, TQDMProgressBar


def elapsed(seconds: float) -> str:
    """`12.3s`, `4m05s` or `2h03m`: short enough for a log line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def metric_text(metrics: dict[str, Any]) -> str:
    """`train_nll 17.88  val_nll 17.63`: scalar metrics, per-step values left out where an epoch
    mean exists, `_epoch` suffixes dropped."""
    parts = []
    for name, value in sorted(metrics.items()):
        if name.endswith("_step") and f"{name[:-5]}_epoch" in metrics:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        short = name[:-6] if name.endswith("_epoch") else name[:-5] if name.endswith("_step") else name
        parts.append(f"{short} {number:.4g}")
    return "  ".join(parts)


class ProgressLines(ProgressBar):
    """Lightning's progress-bar slot (so Lightning adds no bar of its own), filled with plain lines
    on `stream` (default: stderr) from the main process only."""

    def __init__(self, every_seconds: float = 60.0, stream: TextIO | None = None) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self.stream = stream
        self.enabled = True
        self.start = self.last = time.monotonic()

    def disable(self) -> None:  # noqa: D102 (Lightning's ProgressBar API)
        self.enabled = False

    def enable(self) -> None:  # noqa: D102
        self.enabled = True

    def _print(self, trainer, text: str) -> None:
        if self.enabled and trainer.is_global_zero:
            print(text, file=self.stream or sys.stderr, flush=True)
        self.last = time.monotonic()

    def _epoch(self, trainer) -> str:
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        return f"epoch {trainer.current_epoch + 1}{total}"

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = self.last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if time.monotonic() - self.last < self.every_seconds:
            return
        total = self.total_train_batches
        of = f"/{total}" if isinstance(total, int) else ""
        metrics = metric_text({k: v for k, v in trainer.progress_bar_metrics.items() if k != "v_num"})
        spent = elapsed(time.monotonic() - self.start)
        self._print(trainer, f"{self._epoch(trainer)}  batch {batch_idx + 1}{of}  {metrics}  {spent}")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = metric_text(dict(trainer.callback_metrics))
        spent = elapsed(time.monotonic() - self.start)
        self._print(trainer, f"{self._epoch(trainer)}  step {trainer.global_step}  {metrics}  {spent}")

    def on_train_end(self, trainer, pl_module) -> None:
        for callback in trainer.callbacks:
            if isinstance(callback, EarlyStopping) and callback.stopped_epoch > 0:
                self._print(
                    trainer,
                    f"early stopping after epoch {callback.stopped_epoch + 1}: {callback.monitor} did not"
                    f" improve for {callback.patience} epochs",
                )


class TerminalBar(TQDMProgressBar):
    """Lightning's tqdm bar without its `v_num` (the log folder's version, which says nothing here)."""

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:  # noqa: D102
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
