"""Generative vs discriminative (Ng & Jordan 2002) on SMS spam: test error vs training-set size.

Naive Bayes (Bernoulli on word presence, multinomial on counts, Laplace alpha = 1) against
logistic regression on word presence (L2, C = 1, scikit-learn's default). Two feature sets,
both chosen without looking at labels: the 200 most frequent training words, and every word
seen at least twice in the training split. For each size, `REPEATS` random training subsets
(each holding both classes) are drawn from the fixed training split; the plot shows the mean
error on the fixed test split +- its standard error over subsets.

Run: OMP_NUM_THREADS=1 python examples/sms_learning_curves.py
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import quick_or, save_figure, save_json, sms_features, summarise_repeats
from matplotlib.ticker import NullFormatter, ScalarFormatter

from chainrule.classifiers import BernoulliNaiveBayes, LogisticRegression, MultinomialNaiveBayes

SIZES = quick_or([20, 40, 80, 160, 320, 640, 1280, 2560, 3647], [20, 160])
REPEATS = quick_or(10, 2)
SEED = 0
C = 1.0


def learning_curves(xc, xt, y, yt, rng) -> dict[str, dict[str, list]]:
    """Test error of each method for every size and repeat."""
    xb, xbt = (xc > 0).double(), (xt > 0).double()
    methods = {
        "Bernoulli NB": lambda idx: BernoulliNaiveBayes(1.0).fit(xb[idx], y[idx]).predict(xbt),
        "multinomial NB": lambda idx: MultinomialNaiveBayes(1.0).fit(xc[idx], y[idx]).predict(xt),
        f"logistic regression (C={C:g})": lambda idx: LogisticRegression(C).fit(xb[idx], y[idx]).predict(xbt),
    }
    errors: dict[str, list[list[float]]] = {m: [] for m in methods}
    for size in SIZES:
        per: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(1 if size == len(y) else REPEATS):
            while True:
                idx = torch.from_numpy(rng.choice(len(y), size, replace=False))
                if 0 < int(y[idx].sum()) < size:
                    break
            for m, run in methods.items():
                per[m].append(float((run(idx) != yt).double().mean()))
        for m in methods:
            errors[m].append(per[m])
        print(f"  n={size}:", {m: f"{100 * np.mean(v):.2f}%" for m, v in per.items()}, flush=True)
    return summarise_repeats(errors, "error")


def main() -> None:
    started = time.time()
    d, vocab, xc, xt = sms_features()
    y, yt = d.train_labels, d.test_labels
    rng = np.random.default_rng(SEED)
    feature_sets = {"200 most frequent words": 200, f"all {len(vocab):,} words (seen >= 2 times)": len(vocab)}
    results = {}
    for name, v in feature_sets.items():
        print(name, flush=True)
        results[name] = learning_curves(xc[:, :v], xt[:, :v], y, yt, rng)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
    for ax, (name, res) in zip(axes, results.items()):
        for (m, s), fmt in zip(res.items(), ["o-", "s-", "^--"]):
            mean, se = 100 * np.array(s["mean_error"]), 100 * np.array(s["stderr"])
            ax.errorbar(SIZES, mean, yerr=se, fmt=fmt, capsize=3, label=m, ms=4)
        ax.axhline(100 * float(yt.double().mean()), color="gray", lw=0.8, ls=":", label="always 'ham'")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_yticks([1.5, 2, 3, 4, 6, 8, 10, 13])
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"features: {name}")
        ax.set_xlabel("training messages (random subsets of the training split)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"test error (%), mean ± s.e. over {REPEATS} subsets")
    axes[0].legend()
    fig.suptitle("SMS spam: generative (Naive Bayes) vs discriminative (logistic regression)")
    save_figure(fig, "sms_learning_curves")
    save_json(
        "sms_learning_curves",
        {
            "data": d.description,
            "sizes": SIZES,
            "repeats": REPEATS,
            "seed": SEED,
            "test_examples": len(yt),
            "always_ham_error": float(yt.double().mean()),
            "results": results,
        },
        started,
    )


if __name__ == "__main__":
    main()
