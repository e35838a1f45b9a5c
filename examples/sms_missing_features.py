"""Missing features at test time: Naive Bayes marginalises them, logistic regression must impute.

Each test entry (message x word) is removed independently with probability f (missing
completely at random), f in 0/25/50/75/90 %. Naive Bayes drops the missing words from its
product (exact marginalisation under its own model, no refit); logistic regression, trained on
complete data, gets the training mean of each missing feature. As a control, Bernoulli NB
with missing entries read as 'word absent' shows what marginalisation buys. Mean +- s.e. over
`REPEATS` random masks; all models fitted once on the full training split.

Run: OMP_NUM_THREADS=1 python examples/sms_missing_features.py
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import quick_or, save_figure, save_json, sms_features, summarise_repeats

from chainrule.classifiers import BernoulliNaiveBayes, LogisticRegression, MultinomialNaiveBayes

FRACTIONS = quick_or([0.0, 0.25, 0.5, 0.75, 0.9], [0.0, 0.5])
REPEATS = quick_or(5, 2)
SEED = 0
C = 1.0


def run(xc: torch.Tensor, xt: torch.Tensor, y: torch.Tensor, yt: torch.Tensor) -> dict[str, dict]:
    xb, xbt = (xc > 0).double(), (xt > 0).double()
    bnb = BernoulliNaiveBayes(1.0).fit(xb, y)
    mnb = MultinomialNaiveBayes(1.0).fit(xc, y)
    lr = LogisticRegression(C).fit(xb, y)
    mean = xb.mean(0).expand_as(xbt)
    methods = {
        "Bernoulli NB, marginalised": lambda m: bnb.predict(torch.where(m, float("nan"), xbt)),
        "multinomial NB, marginalised": lambda m: mnb.predict(torch.where(m, float("nan"), xt)),
        f"logistic regression (C={C:g}), mean-imputed": lambda m: lr.predict(torch.where(m, mean, xbt)),
        "Bernoulli NB, missing read as absent": lambda m: bnb.predict(torch.where(m, 0.0, xbt)),
    }
    g = torch.Generator().manual_seed(SEED)
    acc: dict[str, list[list[float]]] = {name: [] for name in methods}
    for f in FRACTIONS:
        per: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(REPEATS if f > 0 else 1):
            missing = torch.rand(xbt.shape, generator=g, dtype=torch.float64) < f
            for name, predict in methods.items():
                per[name].append(float((predict(missing) == yt).double().mean()))
        for name in methods:
            acc[name].append(per[name])
        print(f"  {f:.0%} missing:", {k: f"{100 * np.mean(v):.2f}%" for k, v in per.items()}, flush=True)
    return summarise_repeats(acc, "accuracy")


def main() -> None:
    started = time.time()
    d, vocab, xc, xt = sms_features()
    y, yt = d.train_labels, d.test_labels
    results = {}
    for name, v in (("200 most frequent words", 200), (f"all {len(vocab):,} words", len(vocab))):
        print(name, flush=True)
        results[name] = run(xc[:, :v], xt[:, :v], y, yt)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
    for ax, (name, res) in zip(axes, results.items()):
        for (m, s), fmt in zip(res.items(), ["o-", "s-", "^--", "x:"]):
            ax.errorbar(
                100 * np.array(FRACTIONS),
                100 * np.array(s["mean_accuracy"]),
                yerr=100 * np.array(s["stderr"]),
                fmt=fmt,
                capsize=3,
                label=m,
                ms=5,
            )
        ax.axhline(100 * (1 - float(yt.double().mean())), color="gray", lw=0.8, ls=":", label="always 'ham'")
        ax.set_title(f"features: {name}")
        ax.set_xlabel("test features removed at random (%)")
        ax.set_xticks(100 * np.array(FRACTIONS))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test accuracy (%), mean ± s.e. over {REPEATS} masks")
    axes[0].legend(fontsize=8)
    fig.suptitle("SMS spam with missing features: marginalisation (NB) vs mean imputation (LR)")
    save_figure(fig, "sms_missing_features")
    save_json(
        "sms_missing_features",
        {
            "data": d.description,
            "fractions_missing": FRACTIONS,
            "repeats": REPEATS,
            "seed": SEED,
            "always_ham_accuracy": 1 - float(yt.double().mean()),
            "results": results,
        },
        started,
    )


if __name__ == "__main__":
    main()
