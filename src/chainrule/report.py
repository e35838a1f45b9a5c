"""Pictures: sample grids and learning curves (matplotlib, headless)."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from chainrule.persistence import atomic_write_bytes  # noqa: E402


def figure_html(fig, dpi: int = 100, alt: str = "figure") -> str:
    """A matplotlib figure as an HTML `<img>` with the PNG inline (base64), and close it: how the
    documentation pages show pictures that their code blocks draw, with no file to manage."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _save_figure(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def image_grid(
    images: torch.Tensor,
    image_shape: tuple[int, int],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
    ncols: int | None = None,
    title: str | None = None,
) -> Path:
    """Write a grid of (N, H*W) images as a PNG (white = high value)."""
    x = images.detach().float().cpu().reshape(-1, *image_shape).numpy() / max(num_values - 1, 1)
    n = x.shape[0]
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    h, w = image_shape
    canvas = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1)) * 0.5
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = x[i]
    inches = 6.0 / max(canvas.shape)  # longer side 6 inches
    fig, ax = plt.subplots(figsize=(canvas.shape[1] * inches, canvas.shape[0] * inches))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return _save_figure(fig, path)


def read_epoch_metrics(log_dir: str | os.PathLike) -> list[dict[str, str]]:
    """All rows of a run's CSV logs, one `partN/metrics.csv` per (re)start, in order."""
    parts = sorted(Path(log_dir).glob("part*/metrics.csv"), key=lambda p: int(p.parent.name[4:]))
    rows: list[dict[str, str]] = []
    for p in parts:
        with p.open() as f:
            rows.extend(csv.DictReader(f))
    return rows


def plot_curves(log_dir: str | os.PathLike, path: str | os.PathLike, title: str = "") -> Path | None:
    """Training (per epoch) and validation NLL against epoch, from Lightning's CSV logs."""
    train, val = {}, {}
    for row in read_epoch_metrics(log_dir):
        ep = row.get("epoch")
        if not ep:
            continue
        if row.get("train_nll_epoch"):
            train[int(ep)] = float(row["train_nll_epoch"])
        if row.get("val_nll"):
            val[int(ep)] = float(row["val_nll"])
    if not train and not val:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot([e + 1 for e in train], list(train.values()), label="train NLL (minibatch mean)")
    if val:
        ax.plot([e + 1 for e in val], list(val.values()), label="validation NLL")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save_figure(fig, path)
