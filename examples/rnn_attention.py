"""The plain RNN, vanishing gradients, and attention over RNN states, on Shakespeare's plays.

Four language models of about 150k parameters each -- the notes' tanh RNN, an LSTM, an LSTM with
attention over its past hidden states (`rnn-attention`) and a causal Transformer -- are trained one
after the other for the same wall time (`MINUTES` each, one CPU thread, `chainrule.fit` with the
cosine-over-time schedule) and scored on the whole test split (4 held-out plays). Then:

- the vanishing-gradient picture: the norm of d loss_T / d e_t (the gradient of the loss of the
  prediction at step T with respect to the embedded input at step t), averaged over a batch of test
  windows, against T - t, for the tanh RNN and the LSTM, at initialisation and after training;
- the attention weights of the RNN + attention model and of the Transformer (every layer and
  head) over a line of Shakespeare, as heatmaps.

Writes docs/experiments/rnn_attention.json, rnn_attention_gradients.png,
rnn_attention_weights.png and rnn_attention_transformer.png.

Run: OMP_NUM_THREADS=1 python examples/rnn_attention.py
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import QUICK, quick_or, save_figure, save_json
from matplotlib.colors import PowerNorm

import chainrule
from chainrule.data import shakespeare
from chainrule.models import build_model

MINUTES = quick_or(4.0, 0.02)
TEST_CHARS = quick_or(None, 1000)  # None: the whole test split
LINE = "To be, or not to be, that is the question:"
GRAD_LENGTH = quick_or(101, 41)  # input positions of the gradient windows (lags 0 .. GRAD_LENGTH - 1)
GRAD_BATCH = quick_or(32, 4)
SEED = 0
RUNS = Path(__file__).resolve().parent.parent / "runs" / "rnn_attention"

#: label -> (registered name, constructor arguments): about 150k parameters each
MODELS = {
    "tanh RNN": ("char-rnn", {"cell": "tanh", "embed": 64, "hidden": 320}),
    "LSTM": ("char-rnn", {"cell": "lstm", "embed": 64, "hidden": 160}),
    "RNN + attention": ("rnn-attention", {"cell": "lstm", "embed": 64, "hidden": 128, "attention": 64}),
    "Transformer": ("transformer", {"d_model": 64, "layers": 3, "heads": 4, "block_size": 128}),
}
TRAIN = {
    "batch_size": 32,
    "seq_len": 128,
    "lr": 3e-3,
    "grad_clip": 1.0,
    "lr_schedule": "cosine-time",
    "max_minutes": MINUTES,
    "max_epochs": 100000,
    "limit_train_batches": quick_or(50, 3),
    "limit_val_batches": quick_or(4, 1),
    "patience": 100000,
    "progress": False,
    "seed": SEED,
}
TRAIN_FOR = {"Transformer": {"lr": 2e-3, "warmup_steps": 50}}


def train_all(data, folder: Path) -> tuple[dict, dict]:
    """Train every model of MODELS for MINUTES; return the trained models and their table rows."""
    models, rows = {}, {}
    for label, (name, args) in MODELS.items():
        torch.manual_seed(SEED)
        model = build_model(name, vocab=data.tokenizer.vocab, **args)
        config = chainrule.TrainConfig(**{**TRAIN, **TRAIN_FOR.get(label, {})})
        started = time.time()
        out = folder / label.replace(" ", "-").replace("+", "plus")
        result = chainrule.fit(model, data, config, out, force=True)
        model = chainrule.load(result.model_dir)
        report = chainrule.evaluate(model, data, "test", n=TEST_CHARS)
        rows[label] = {
            "model": name,
            "config": args,
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(result.train_seconds, 1),
            "wall_seconds_with_validation": round(time.time() - started - report["seconds"], 1),
            "epochs": result.epochs,
            "best_val_nats_per_char": round(result.best_val_nll, 4),
            "test_nats_per_char": round(report["nats_per_char"], 4),
            "test_bits_per_char": round(report["bits_per_char"], 4),
            "test_chars": report["chars"],
        }
        print(label, rows[label], flush=True)
        models[label] = model
    return models, rows


def gradient_norms(model, windows: torch.Tensor) -> np.ndarray:
    """Mean over the batch of ||d loss_T / d e_t||, against the lag T - t = 0, 1, ..., where loss_T
    is -log p(x_T | x_<T) of the last token of each window and e_t the embedded input t (float64)."""
    model = model.double().eval()
    inputs, target = windows[:, :-1], windows[:, -1]
    kept = {}

    def keep(module, args, out):
        out.retain_grad()
        kept["e"] = out

    handle = model.embedding.register_forward_hook(keep)
    try:
        logits = model(inputs)[:, -1]
        torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()
    finally:
        handle.remove()
        model.zero_grad()
    norms = kept["e"].grad.norm(dim=-1).mean(0)  # (L,) by input position
    model.float()
    return norms.flip(0).numpy()  # by lag: the last input is lag 0


def gradient_picture(models_at_init: dict, trained: dict, windows: torch.Tensor) -> dict:
    """Plot (and return) the gradient norms of the tanh RNN and the LSTM against T - t."""
    curves = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (when, models) in zip(axes, [("at initialisation", models_at_init), ("after training", trained)]):
        for label in ("tanh RNN", "LSTM"):
            norms = gradient_norms(models[label], windows)
            curves[f"{label}, {when}"] = [float(v) for v in norms]
            ax.semilogy(np.arange(len(norms)), norms, label=label)
        ax.set_title(f"{when}")
        ax.set_xlabel("T - t (steps back from the predicted token)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("mean ||d loss_T / d x_t||")
    fig.suptitle("Gradient of the loss at step T with respect to the input at step t (Shakespeare test text)")
    save_figure(fig, "rnn_attention_gradients")
    return curves


def heatmap(ax, weights: np.ndarray, chars: list[str], title: str, labels: bool = True) -> None:
    # a square-root colour scale: the first rows (one or two states to attend to) would hide the rest
    ax.imshow(weights, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=max(float(weights.max()), 1e-9)))
    ax.set_title(title, fontsize=9)
    if labels:
        ax.set_xticks(range(len(chars)), [repr(c)[1:-1] for c in ["<s>", *chars[:-1]]], fontsize=6)
        ax.set_yticks(range(len(chars)), [repr(c)[1:-1] for c in chars], fontsize=6)
        ax.set_xlabel("hidden state / input read (x_{s-1})")
        ax.set_ylabel("predicted character x_t")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def attention_pictures(trained: dict, line: str) -> dict:
    """Heatmaps of the attention weights over `line`; returns the weights of the RNN + attention."""
    chars = list(line)
    rnn_attention, transformer = trained["RNN + attention"], trained["Transformer"]
    x = rnn_attention.encode(line)[None]
    a = rnn_attention.attention_weights(x)[0].numpy()
    fig, ax = plt.subplots(figsize=(8, 7.5))
    heatmap(ax, a, chars, "LSTM + attention over its past hidden states: a_{t,s}")
    save_figure(fig, "rnn_attention_weights")
    w = transformer.attention_weights(x)[0].numpy()  # (layers, heads, T, T)
    layers, heads = w.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(2.6 * heads, 2.6 * layers), squeeze=False)
    for i in range(layers):
        for j in range(heads):
            heatmap(axes[i, j], w[i, j], chars, f"layer {i + 1}, head {j + 1}", labels=False)
    fig.suptitle(f"Transformer attention over {line!r} (rows: predicted x_t, columns: inputs s <= t)")
    save_figure(fig, "rnn_attention_transformer")
    return {"rnn_attention": a.round(4).tolist(), "transformer_shape": list(w.shape)}


def main() -> None:
    started = time.time()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    data = shakespeare()
    torch.manual_seed(SEED)
    at_init = {
        label: build_model(*MODELS[label][:1], vocab=data.tokenizer.vocab, **MODELS[label][1])
        for label in ("tanh RNN", "LSTM")
    }
    if QUICK:
        with tempfile.TemporaryDirectory() as folder:
            trained, table = train_all(data, Path(folder))
    else:  # the trained models stay in runs/rnn_attention/<label>/model (runs/ is not committed)
        RUNS.mkdir(parents=True, exist_ok=True)
        trained, table = train_all(data, RUNS)
    test = data.encoded("test", data.tokenizer)
    g = torch.Generator().manual_seed(SEED)
    starts = torch.randint(0, len(test) - GRAD_LENGTH - 1, (GRAD_BATCH,), generator=g)
    windows = torch.stack([test[s : s + GRAD_LENGTH + 1] for s in starts.tolist()]).long()
    curves = gradient_picture(at_init, trained, windows)
    lag = min(50, GRAD_LENGTH - 1)
    ratios = {
        when: curves[f"LSTM, {when}"][lag] / curves[f"tanh RNN, {when}"][lag]
        for when in ("at initialisation", "after training")
    }
    weights = attention_pictures(trained, LINE)
    results = {
        "minutes_each": MINUTES,
        "train": TRAIN,
        "train_overrides": TRAIN_FOR,
        "table": table,
        "gradient_norms_by_lag": curves,
        "gradient_lag": lag,
        "lstm_over_tanh_gradient_ratio_at_lag": ratios,
        "line": LINE,
        "attention_weights": weights,
        "test_chars": TEST_CHARS or len(test),
        "quick": QUICK,
    }
    print(save_json("rnn_attention", results, started))


if __name__ == "__main__":
    main()
