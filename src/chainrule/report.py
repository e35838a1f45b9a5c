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
    return _png_img_html(buf.getvalue(), alt)


def _png_img_html(png: bytes, alt: str) -> str:
    """PNG bytes as an HTML `<img>` that carries them inline (base64)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def png_file_html(path: str | os.PathLike, alt: str, caption: str | None = None) -> str:
    """A PNG file (a zoo entry's or benchmark's picture) as an inline HTML `<img>`, with a bold
    caption naming the file; a note that it appears once published when the file is missing, so
    that the documentation builds before every model is trained."""
    path = Path(path)
    where = html.escape(str(path))
    if not path.is_file():
        return f"<p><em>The picture of {html.escape(alt)} appears here when {where} is published.</em></p>"
    title = f"<p><b>{html.escape(caption)}</b> ({where})</p>" if caption else ""
    return title + _png_img_html(path.read_bytes(), alt)


def _save_figure(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def as_pixels(images: torch.Tensor, image_shape: tuple[int, ...], num_values: int = 2) -> np.ndarray:
    """(N, D) values → (N, H, W, C) floats in [0, 1] (C = 1 for grey images, 3 for colour)."""
    shape = tuple(image_shape) if len(image_shape) == 3 else (*image_shape, 1)
    x = images.detach().float().cpu().reshape(-1, *shape).numpy()
    return np.clip(x / max(num_values - 1, 1), 0.0, 1.0)


def tile(pixels: np.ndarray, ncols: int, gap: float = 0.5) -> np.ndarray:
    """(N, H, W, C) pictures → one (rows*(H+1)+1, cols*(W+1)+1, C) canvas with grey gaps."""
    n, h, w, c = pixels.shape
    nrows = int(math.ceil(n / ncols))
    canvas = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, c), gap)
    for i in range(n):
        r, col = divmod(i, ncols)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = pixels[i]
    return canvas


def show_canvas(canvas: np.ndarray, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write a canvas (grey or RGB) as a PNG, longer side 6 inches."""
    inches = 6.0 / max(canvas.shape[:2])
    fig, ax = plt.subplots(figsize=(canvas.shape[1] * inches, canvas.shape[0] * inches))
    if canvas.shape[2] == 1:
        ax.imshow(canvas[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return _save_figure(fig, path)


def image_grid(
    images: torch.Tensor,
    image_shape: tuple[int, ...],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
    ncols: int | None = None,
    title: str | None = None,
) -> Path:
    """Write a grid of (N, D) images as a PNG (white = high value); image_shape (H, W) for grey
    or (H, W, C) for colour images stored channel-fastest."""
    pixels = as_pixels(images, image_shape, num_values)
    ncols = ncols or int(math.ceil(math.sqrt(pixels.shape[0])))
    return show_canvas(tile(pixels, ncols), path, title)


def comparison_grid(
    columns: list[torch.Tensor],
    draws: torch.Tensor,
    image_shape: tuple[int, ...],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
    title: str | None = None,
    after: list[torch.Tensor] | tuple[()] = (),
) -> Path:
    """One row per image: the fixed `columns` (each (B, D) images, or (B, H, W, C) pixels in
    [0, 1]), then the B × S `draws` (B, S, D) of that image, then the `after` columns."""

    def pixels(c):
        return c if c.ndim == 4 else as_pixels(c, image_shape, num_values)

    fixed, last = [pixels(c) for c in columns], [pixels(c) for c in after]
    s = draws.shape[1]
    drawn = as_pixels(draws.reshape(-1, draws.shape[-1]), image_shape, num_values)
    rows = []
    for i in range(len(fixed[0])):
        rows += [c[i] for c in fixed] + list(drawn[i * s : (i + 1) * s]) + [c[i] for c in last]
    return show_canvas(tile(np.stack(rows), ncols=s + len(fixed) + len(last)), path, title)


def completion_grid(
    x: torch.Tensor,
    observed: torch.Tensor,
    filled: torch.Tensor,
    image_shape: tuple[int, ...],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
) -> Path:
    """One row per image: the original, the masked input (missing pixels mid-grey with a red tint
    for colour), then each completion (B, S, D)."""
    originals = as_pixels(x, image_shape, num_values)
    shown = originals.copy()
    hidden = ~observed.reshape(originals.shape[1:]).cpu().numpy()
    shown[:, hidden] = 0.5
    s = filled.shape[1]
    title = f"original | masked | {s} completion{'s' if s > 1 else ''}"
    return comparison_grid([originals, shown], filled, image_shape, path, num_values=num_values, title=title)


def superres_grid(
    x: torch.Tensor,
    lowres_upsampled: torch.Tensor,
    draws: torch.Tensor,
    image_shape: tuple[int, ...],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
    factor: int | None = None,
) -> Path:
    """Super-resolution: one row per image, the original, its low-resolution version enlarged to
    full size (blocky; `chainrule.tasks.superres.upsample`), then each high-resolution draw (B, S, D)."""
    s = draws.shape[1]
    low = f"low-res (1/{factor})" if factor else "low-res"
    title = f"original | {low} | {s} sample{'s' if s > 1 else ''}"
    return comparison_grid(
        [x, lowres_upsampled], draws, image_shape, path, num_values=num_values, title=title
    )


def colourisation_grid(
    grey: torch.Tensor,
    draws: torch.Tensor,
    x: torch.Tensor,
    image_shape: tuple[int, ...],
    path: str | os.PathLike,
    *,
    num_values: int = 2,
    grey_levels: int = 2,
) -> Path:
    """Colourisation: one row per image, the greyscale input (B, H * W), each colour draw (B, S, D),
    then the true colour image x (B, D)."""
    h, w = image_shape[:2]
    grey_px = as_pixels(grey, (h, w), grey_levels)
    grey_px = np.repeat(grey_px, 3, axis=-1) if len(image_shape) == 3 and image_shape[2] == 3 else grey_px
    s = draws.shape[1]
    title = f"greyscale | {s} colouring{'s' if s > 1 else ''} | true colour"
    return comparison_grid([grey_px], draws, image_shape, path, num_values=num_values, title=title, after=[x])


def defend_figure(
    images: dict[str, torch.Tensor],
    predictions: dict[str, torch.Tensor],
    labels: torch.Tensor,
    image_shape: tuple[int, ...],
    *,
    num_values: int = 256,
    class_names: list[str] | tuple[str, ...] | None = None,
    title: str | None = None,
):
    """PixelDefend examples: one column per image set (clean, attacked, purified, in the order of
    `images`), one row per example; under each image the classifier's label, green when right
    and red when wrong. Returns the matplotlib figure."""
    names = list(images)
    rows = len(labels)
    fig, axes = plt.subplots(rows, len(names), figsize=(1.15 * len(names), 1.25 * rows + 0.4), squeeze=False)
    for col, name in enumerate(names):
        pixels = as_pixels(images[name], image_shape, num_values)
        for row in range(rows):
            ax = axes[row][col]
            img = pixels[row]
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            pred, true = int(predictions[name][row]), int(labels[row])
            text = class_names[pred] if class_names else str(pred)
            ax.set_xlabel(text, fontsize=7, color="green" if pred == true else "red", labelpad=1)
            if row == 0:
                ax.set_title(name.replace(", ", "\n"), fontsize=7)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight() if title else 1))
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def defend_grid(path: str | os.PathLike, *args, **kwargs) -> Path:
    """Write `defend_figure(*args, **kwargs)` as a PNG."""
    return _save_figure(defend_figure(*args, **kwargs), path)


def read_epoch_metrics(log_dir: str | os.PathLike) -> list[dict[str, str]]:
    """All rows of a run's CSV logs, one `partN/metrics.csv` per (re)start, in order."""
    parts = sorted(Path(log_dir).glob("part*/metrics.csv"), key=lambda p: int(p.parent.name[4:]))
    rows: list[dict[str, str]] = []
    for p in parts:
        with p.open() as f:
            rows.extend(csv.DictReader(f))
    return rows


def epoch_curves(log_dir: str | os.PathLike) -> tuple[dict[int, float], dict[int, float]]:
    """Training (minibatch mean per epoch) and validation NLL by epoch, from Lightning's CSV logs.
    A last epoch that the time budget cut to under half the steps of the one before has no
    training value: its mean over a few minibatches is mostly noise (one step: 1.2 nats below the
    curve)."""
    train, val, last_step = {}, {}, {}
    for row in read_epoch_metrics(log_dir):
        ep = row.get("epoch")
        if not ep:
            continue
        if row.get("train_nll_epoch"):
            train[int(ep)] = float(row["train_nll_epoch"])
            last_step[int(ep)] = int(row.get("step") or 0)
        if row.get("val_nll"):
            val[int(ep)] = float(row["val_nll"])
    epochs = sorted(last_step)
    if len(epochs) >= 3:  # the last epoch's steps against those of the one before
        a, b, c = (last_step[e] for e in epochs[-3:])
        if c - b < (b - a) / 2:
            del train[epochs[-1]]
    return train, val


def plot_curves(log_dir: str | os.PathLike, path: str | os.PathLike, title: str = "") -> Path | None:
    """Training (per epoch) and validation NLL against epoch, from Lightning's CSV logs (see
    `epoch_curves`)."""
    train, val = epoch_curves(log_dir)
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


SCORE_TITLES = {"nll": "NLL", "bits_per_dim": "bits/dim"}
SCORE_LABELS = {
    "nll": "negative log-likelihood (nats)",
    "bits_per_dim": "bits per dimension",
    "likelihood_ratio": "likelihood ratio score (nats)",
    "input_complexity": "input complexity S(x) (bits)",
    "typicality": "typicality |NLL - Ĥ| (nats)",
}


def score_histogram_figure(
    scores_in: dict[str, torch.Tensor],
    scores_ood: dict[str, torch.Tensor],
    *,
    labels: tuple[str, str] = ("in-distribution", "OOD"),
    aurocs: dict[str, float] | None = None,
    title: str | None = None,
    skip: tuple[str, ...] = ("bits_per_dim",),
):
    """A matplotlib figure with one panel per score: histograms of in-distribution and OOD values
    on shared bins (density-normalised; values beyond the 0.5 and 99.5 percentiles are drawn in
    the end bins), the AUROC in the panel title when given. `bits_per_dim` is left out by default:
    it ranks like `nll`."""
    names = [k for k in scores_in if k in scores_ood and k not in skip]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        a = scores_in[name].detach().double().cpu().numpy()
        b = scores_ood[name].detach().double().cpu().numpy()
        lo, hi = np.percentile(np.r_[a, b], [0.5, 99.5])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        ax.hist(np.clip(a, bins[0], bins[-1]), bins=bins, density=True, alpha=0.6, label=labels[0])
        ax.hist(np.clip(b, bins[0], bins[-1]), bins=bins, density=True, alpha=0.6, label=labels[1])
        head = SCORE_TITLES.get(name, name.replace("_", " "))
        if aurocs and name in aurocs:
            head += f"  (AUROC {aurocs[name]:.3f})"
        ax.set_title(head, fontsize=9)
        ax.set_xlabel(SCORE_LABELS.get(name, name), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def score_histograms(
    scores_in: dict[str, torch.Tensor], scores_ood: dict[str, torch.Tensor], path: str | os.PathLike, **kwargs
) -> Path:
    """Write `score_histogram_figure` (same arguments) as a PNG: higher scores = more anomalous."""
    return _save_figure(score_histogram_figure(scores_in, scores_ood, **kwargs), path)
