"""Correlated features: Naive Bayes counts duplicated evidence k times, logistic regression does not.

The `TOP` words most informative about the label (mutual information on the training split)
are copied k times, so the feature vector holds k perfectly correlated copies of each. Naive
Bayes assumes the copies independent given the class and adds their log-likelihood ratios k
times: its posteriors move towards 0 and 1 (over-confidence), visible in the test log-loss and
in the reliability diagram. Logistic regression spreads one weight over the copies (with L2
the total weight's penalty shrinks by 1/k, a small effect here), so its predictions barely move.

Run: OMP_NUM_THREADS=1 python examples/sms_correlated_features.py
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from experiment_utils import quick_or, save_figure, save_json, sms_features

from chainrule.classifiers import BernoulliNaiveBayes, LogisticRegression, log_loss

VOCAB = 200  # most frequent training words
TOP = 10  # informative words that get duplicated
COPIES = quick_or([1, 2, 4, 8, 16], [1, 4])
C = 1.0
CONFIDENCE_BINS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]


def mutual_information(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """I(x_j; y) in nats for binary features, from training counts (+0.5 smoothing)."""
    joint = torch.stack(
        [torch.stack([((x == a) & (y[:, None] == b)).sum(0) for b in (0, 1)]) for a in (0, 1)]
    )
    p = (joint.double() + 0.5) / (joint.sum((0, 1)).double() + 2)  # (2, 2, D)
    px, py = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    return (p * (p.log() - px.log() - py.log())).sum((0, 1))


def reliability(log_proba: torch.Tensor, y: torch.Tensor) -> tuple[list, list, list, float]:
    """Per bin of confidence (the probability of the predicted class): mean confidence, accuracy,
    count; and the expected calibration error (count-weighted mean |confidence - accuracy|).
    The bins are finer near 1, where almost all predictions of a spam filter fall."""
    conf_all, pred = log_proba.max(1)
    conf_all, correct = conf_all.exp(), (pred == y).double()
    edges = torch.tensor(CONFIDENCE_BINS, dtype=torch.float64)
    b = torch.bucketize(conf_all, edges[1:-1])
    conf, acc, count, ece = [], [], [], 0.0
    for i in range(len(CONFIDENCE_BINS) - 1):
        sel = b == i
        if sel.any():
            conf.append(float(conf_all[sel].mean()))
            acc.append(float(correct[sel].mean()))
            count.append(int(sel.sum()))
            ece += count[-1] * abs(conf[-1] - acc[-1])
    return conf, acc, count, ece / len(y)


def main() -> None:
    started = time.time()
    d, vocab, xc, xt = sms_features()
    xb, xbt = (xc[:, :VOCAB] > 0).double(), (xt[:, :VOCAB] > 0).double()
    y, yt = d.train_labels, d.test_labels
    top = torch.argsort(mutual_information(xb, y), descending=True)[:TOP]
    words = [vocab.words[int(j)] for j in top]
    print("duplicated words:", words)
    results: dict[str, dict[str, list]] = {}
    curves = {}
    for name, make in (
        ("Bernoulli NB", lambda: BernoulliNaiveBayes(1.0)),
        (f"logistic regression (C={C:g})", lambda: LogisticRegression(C)),
    ):
        res = {"accuracy": [], "log_loss": [], "ece": [], "mean_confidence": []}
        for k in COPIES:
            extra = [xb[:, top]] * (k - 1), [xbt[:, top]] * (k - 1)
            tr, te = torch.cat([xb, *extra[0]], 1), torch.cat([xbt, *extra[1]], 1)
            clf = make().fit(tr, y)
            lp = clf.predict_log_proba(te)
            conf, acc, count, ece = reliability(lp, yt)
            curves[(name, k)] = (conf, acc, count)
            res["accuracy"].append(float((lp.argmax(1) == yt).double().mean()))
            res["log_loss"].append(log_loss(lp, yt))
            res["ece"].append(ece)
            res["mean_confidence"].append(float(lp.max(1).values.exp().mean()))
            print(
                f"{name}, k={k}: acc {res['accuracy'][-1]:.4f} log-loss {res['log_loss'][-1]:.4f}"
                f" ECE {ece:.4f}",
                flush=True,
            )
        results[name] = res

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for (name, res), fmt in zip(results.items(), ["o-", "^--"]):
        axes[0].plot(COPIES, res["log_loss"], fmt, label=name)
        axes[1].plot(COPIES, 100 * (1 - np.array(res["accuracy"])), fmt, label=name)
    axes[0].set_ylabel("test log-loss (nats per message)")
    axes[1].set_ylabel("test error (%)")
    for ax in axes[:2]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(COPIES, [str(k) for k in COPIES])
        ax.set_xlabel(f"copies k of each of the {TOP} most informative words")
        ax.grid(alpha=0.3)
        ax.legend()
    ax = axes[2]
    ax.plot([0.5, 1], [0.5, 1], color="gray", lw=0.8, ls=":", label="perfect calibration")
    for name, marker, ls in zip(results, "o^", ["-", "--"]):
        for k, alpha in ((1, 0.4), (COPIES[-1], 1.0)):
            conf, acc, count = curves[(name, k)]
            ece = results[name]["ece"][COPIES.index(k)]
            (line,) = ax.plot(conf, acc, ls, alpha=alpha, label=f"{name}, k={k} (ECE {ece:.3f})")
            ax.scatter(conf, acc, s=8 * np.sqrt(count), marker=marker, color=line.get_color(), alpha=alpha)
    ax.set_xlabel("confidence = probability of the predicted class (bin mean)")
    ax.set_ylabel("accuracy in bin")
    ax.set_title("reliability, test split (marker area ~ messages in bin)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax.grid(alpha=0.3)
    fig.suptitle(f"SMS spam, {VOCAB} most frequent words: duplicated (correlated) features", y=1.02)
    save_figure(fig, "sms_correlated_features")
    save_json(
        "sms_correlated_features",
        {
            "data": d.description,
            "vocabulary": f"{VOCAB} most frequent training words, presence features",
            "duplicated_words": words,
            "copies": COPIES,
            "confidence_bins": CONFIDENCE_BINS,
            "results": results,
            "reliability": {
                f"{name}, k={k}": dict(zip(("bin_mean_confidence", "bin_accuracy", "bin_count"), c))
                for (name, k), c in curves.items()
            },
        },
        started,
    )


if __name__ == "__main__":
    main()
