"""Minibatch size vs gradient noise and final NLL: SGD with momentum on binary 8x8 digits.

1. Gradient noise. For a fixed NADE the per-example gradients g_i of -log q(x_i) over the whole
   training split give the full-batch gradient g (their mean) and the per-example variance
   s2 = mean ||g_i - g||^2. A minibatch of B examples drawn with replacement estimates g without
   bias, with E ||g_B - g||^2 = s2 / B exactly; drawn without replacement (one shuffled epoch, as
   the trainer does) the finite-population factor (N - B) / (N - 1) lowers it. The script draws
   `DRAWS` minibatches per B and fits the log-log slope (-1 expected), at initialisation and after
   training.
2. Batch size vs NLL. The same NADE is trained with SGD + momentum 0.9 (the trainer's optimizer:
   `make_optimizer(TrainConfig(optimizer="sgd"))`) at several batch sizes for the same number of
   examples seen; each batch size gets the best learning rate of a small grid (chosen on the
   validation NLL at the end). Validation NLL is recorded against examples seen and against wall
   time; the test NLL of the final model is reported.
3. Adam vs SGD (with and without momentum, and Nesterov's) at one batch size, each with its best
   learning rate of a grid (SGD with momentum 0.9 is the sweep's run at that batch size).

Run: OMP_NUM_THREADS=1 python examples/minibatch_noise.py
"""

from __future__ import annotations

import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import QUICK, quick_or, save_figure, save_json

import chainrule
from chainrule.models import NADE
from chainrule.training import TrainConfig, make_optimizer

HIDDEN = 32
SEED = 0
NOISE_BATCHES = quick_or([1, 2, 4, 8, 16, 32, 64, 128, 256, 512], [1, 4, 16, 64])
DRAWS = quick_or(400, 50)
EPOCHS = quick_or(8, 1)  # examples seen = EPOCHS x the training split, whatever the batch size
BATCHES = quick_or([1, 4, 16, 64, 256], [4, 64])
#: SGD (momentum 0.9) learning rates tried per batch size: the best on validation is kept
SGD_LRS = quick_or(
    {
        1: [0.003, 0.01, 0.03],
        4: [0.01, 0.03, 0.1],
        16: [0.03, 0.1, 0.3],
        64: [0.1, 0.3, 1.0],
        256: [0.1, 0.3, 1.0],
    },
    {4: [0.01], 64: [0.1]},
)
COMPARE_BATCH = quick_or(16, 4)
COMPARE = quick_or(
    {
        "adam": ({"optimizer": "adam"}, [0.01, 0.03, 0.1]),
        "sgd, Nesterov 0.9": ({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}, [0.03, 0.1, 0.3]),
        "sgd, no momentum": ({"optimizer": "sgd", "momentum": 0.0}, [0.3, 1.0, 3.0]),
    },
    {
        "adam": ({"optimizer": "adam"}, [0.01]),
        "sgd, no momentum": ({"optimizer": "sgd", "momentum": 0.0}, [0.1]),
    },
)
EVALS = quick_or(24, 3)  # validation points per run


def nll(model: NADE, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(-model.log_prob(x).mean())


def per_example_gradients(model: NADE, x: torch.Tensor) -> torch.Tensor:
    """[N, P]: the gradient of -log q(x_i) for each example (float64 for the variance sums)."""
    rows = []
    for xi in x:
        model.zero_grad()
        (-model.log_prob(xi[None]).sum()).backward()
        rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]).double())
    return torch.stack(rows)


def gradient_noise(model: NADE, x: torch.Tensor, seed: int) -> dict:
    """E ||g_B - g||^2 for each B: measured over DRAWS minibatches (with and without replacement),
    and the exact s2 / B; the fitted log-log slope of the with-replacement measurements."""
    grads = per_example_gradients(model, x)
    n, full = len(grads), grads.mean(0)
    s2 = float((grads - full).pow(2).sum(1).mean())
    g = torch.Generator().manual_seed(seed)
    with_r, without_r = [], []

    def error(idx: torch.Tensor) -> float:  # mean over draws of ||minibatch mean - g||^2
        counts = torch.zeros(len(idx), n, dtype=grads.dtype).scatter_add_(
            1, idx, torch.ones_like(idx, dtype=grads.dtype)
        )
        return float((counts @ grads / idx.shape[1] - full).pow(2).sum(1).mean())

    for b in NOISE_BATCHES:
        with_r.append(error(torch.randint(n, (DRAWS, b), generator=g)))
        without_r.append(error(torch.stack([torch.randperm(n, generator=g)[:b] for _ in range(DRAWS)])))
    slope = float(np.polyfit(np.log(NOISE_BATCHES), np.log(with_r), 1)[0])
    return {
        "full_gradient_norm2": float(full.pow(2).sum()),
        "per_example_variance": s2,
        "with_replacement": with_r,
        "without_replacement": without_r,
        "exact_with": [s2 / b for b in NOISE_BATCHES],
        "exact_without": [s2 / b * (n - b) / (n - 1) for b in NOISE_BATCHES],
        "slope": slope,
    }


def train(d, batch: int, lr: float, **opt) -> dict:
    """One run: EPOCHS x N examples seen in shuffled minibatches of `batch`; validation NLL at
    EVALS evenly spaced points (examples seen, wall seconds excluding the evaluations)."""
    torch.manual_seed(SEED)
    model = NADE(d.dim, hidden=HIDDEN)
    optimizer = make_optimizer(model.parameters(), TrainConfig(lr=lr, **opt).check())
    g = torch.Generator().manual_seed(SEED)
    n = len(d.train)
    total = EPOCHS * n
    marks = [round(total * (k + 1) / EVALS) for k in range(EVALS)]
    seen, seconds, curve = 0, 0.0, [{"examples": 0, "seconds": 0.0, "val_nll": nll(model, d.val)}]
    for _ in range(EPOCHS):
        for idx in torch.randperm(n, generator=g).split(batch):
            start = time.perf_counter()
            loss = -model.log_prob(d.train[idx]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - start
            seen += len(idx)
            if marks and seen >= marks[0]:
                marks.pop(0)
                value = nll(model, d.val)
                curve.append({"examples": seen, "seconds": round(seconds, 3), "val_nll": value})
    final = curve[-1]["val_nll"]
    return {
        "lr": lr,
        "curve": curve,
        "final_val_nll": final if np.isfinite(final) else float("inf"),
        "test_nll": nll(model, d.test),
        "train_nll": nll(model, d.train),
        "steps": EPOCHS * -(-n // batch),
        "seconds": round(seconds, 2),
        "model": model,
    }


def best_of(d, batch: int, lrs: list[float], **opt) -> dict:
    """The run with the lowest final validation NLL over `lrs` (and every run's final NLL)."""
    runs = [train(d, batch, lr, **opt) for lr in lrs]
    best = min(runs, key=lambda r: r["final_val_nll"])
    print(
        f"  B={batch:4d} {opt}: final val NLL by lr "
        + ", ".join(f"{r['lr']:g}: {r['final_val_nll']:.2f}" for r in runs)
        + f" (best lr {best['lr']:g}, test {best['test_nll']:.2f}, {best['seconds']:.1f} s)",
        flush=True,
    )
    best["by_lr"] = {str(r["lr"]): r["final_val_nll"] for r in runs}
    return best


def plot(noise: dict, runs: dict, compare: dict, n: int) -> plt.Figure:
    fig, axes = plt.subplots(1, 4, figsize=(24, 4.8))
    ax = axes[0]
    for (label, r), color in zip(noise.items(), ("C0", "C3")):
        ax.loglog(NOISE_BATCHES, r["with_replacement"], "o", color=color, label=f"{label}: with replacement")
        ax.loglog(NOISE_BATCHES, r["without_replacement"], "x", color=color, label=f"{label}: without")
        ax.loglog(
            NOISE_BATCHES, r["exact_with"], "-", color=color, lw=0.8, label=f"s²/B (slope {r['slope']:.2f})"
        )
        ax.loglog(NOISE_BATCHES, r["exact_without"], ":", color=color, lw=0.8)
        ax.axhline(r["full_gradient_norm2"], color=color, ls="--", lw=0.6)
    ax.set_xlabel("minibatch size B")
    ax.set_ylabel("E ||g_B - g||²")
    ax.set_title(f"gradient noise (dashed: ||g||²; dotted: (N-B)/(N-1) s²/B, N={n})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    for ax, key, xlabel in ((axes[1], "examples", "examples seen"), (axes[2], "seconds", "training seconds")):
        for i, (b, r) in enumerate(runs.items()):
            points = r["curve"][1:] if key == "seconds" else r["curve"]  # a log axis has no 0 s
            xs, ys = [p[key] for p in points], [p["val_nll"] for p in points]
            ax.plot(xs, ys, "-", color=f"C{i}", label=f"B={b}, lr {r['lr']:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation NLL (nats per digit)")
        ax.set_ylim(top=40)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_title(f"SGD momentum 0.9, {EPOCHS} epochs at every B")
    axes[2].set_title("the same runs against wall time (1 shared CPU thread)")
    axes[2].set_xscale("log")
    ax = axes[3]
    for i, (label, r) in enumerate(compare.items()):
        ax.plot(
            [p["examples"] for p in r["curve"]],
            [p["val_nll"] for p in r["curve"]],
            color=f"C{i}",
            label=f"{label}, lr {r['lr']:g}",
        )
    ax.set_xlabel("examples seen")
    ax.set_ylabel("validation NLL (nats per digit)")
    ax.set_ylim(top=40)
    ax.set_title(f"optimizers at B={COMPARE_BATCH}, each with its best lr")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Minibatch size, gradient noise and NLL: NADE (hidden {HIDDEN}) on binary 8x8 digits", y=1.02
    )
    return fig


def main() -> None:
    started = time.time()
    d = chainrule.load_dataset("digits")
    if QUICK:
        d = dataclasses.replace(d, train=d.train[:200])
    torch.manual_seed(SEED)
    noise = {"at initialisation": gradient_noise(NADE(d.dim, hidden=HIDDEN), d.train, SEED)}
    print(f"gradient noise at init: slope {noise['at initialisation']['slope']:.3f}", flush=True)
    runs = {b: best_of(d, b, SGD_LRS[b], optimizer="sgd", momentum=0.9) for b in BATCHES}
    trained = runs[BATCHES[len(BATCHES) // 2]]
    noise["after SGD training"] = gradient_noise(trained["model"], d.train, SEED + 1)
    print(f"gradient noise after training: slope {noise['after SGD training']['slope']:.3f}", flush=True)
    compare = {label: best_of(d, COMPARE_BATCH, lrs, **opt) for label, (opt, lrs) in COMPARE.items()}
    compare["sgd, momentum 0.9"] = runs[COMPARE_BATCH]  # the batch-size sweep's run at this B
    save_figure(plot(noise, runs, compare, len(d.train)), "minibatch_noise")
    strip = lambda r: {k: v for k, v in r.items() if k != "model"}  # noqa: E731
    save_json(
        "minibatch_noise",
        {
            "data": f"digits (binary, 64 dims): train {len(d.train)}, val {len(d.val)}, test {len(d.test)}",
            "model": f"NADE(64, hidden={HIDDEN}), seed {SEED}",
            "noise_batches": NOISE_BATCHES,
            "draws": DRAWS,
            "gradient_noise": noise,
            "epochs": EPOCHS,
            "sgd": {"momentum": 0.9, "lrs": {str(b): v for b, v in SGD_LRS.items()}},
            "by_batch_size": {str(b): strip(r) for b, r in runs.items()},
            "compare_batch": COMPARE_BATCH,
            "optimizers": {label: strip(r) for label, r in compare.items()},
        },
        started,
    )


if __name__ == "__main__":
    main()
