"""Translation as a conditional generative model: p(digits | English words), the notes' P(English
text | Chinese text) on a language a laptop can learn in minutes.

Every number 0-999 is written in English words and in digits, one pair a line: "three hundred
twelve=312". A held-out set of numbers (test) and a validation set are never seen in training, so
a correct translation of them needs the parts (hundreds, tens, teens, units) learned separately
and put together. A character-level causal Transformer is trained on the training lines as a
plain language model (`chainrule.fit`, `MINUTES` on one CPU thread). Conditioning is the prefix:
the state after "\\n" + words + "=" is where p(target | source) starts, so

- `model.log_prob(target, cond=prompt)` is the exact conditional log-likelihood of a translation
  (the sum over its characters of log p(char | source, earlier chars)), and
- `model.generate(prompt, ..., top_k=1)` translates greedily, one character at a time.

The same mechanism is the notes' imitation learning, P(actions | past observations), with
observations and actions written as tokens. Writes docs/experiments/translation_numbers.json and
translation_numbers.png (the model's distribution of the first digit for some unseen numbers).

Run: OMP_NUM_THREADS=1 python examples/translation_numbers.py
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from experiment_utils import QUICK, quick_or, save_figure, save_json

import chainrule
from chainrule.data.text import dataset_from_splits
from chainrule.models import build_model

MINUTES = quick_or(4.0, 0.03)
TEST_NUMBERS, VAL_NUMBERS = 150, 100
SCORED = quick_or(TEST_NUMBERS, 12)  # held-out numbers translated and scored
SEED = 0
MODEL = {"d_model": 96, "layers": 3, "heads": 4, "block_size": 64}
TRAIN = {
    "batch_size": 32,
    "seq_len": 64,
    "lr": 3e-3,
    "grad_clip": 1.0,
    "lr_schedule": "cosine-time",
    "max_minutes": MINUTES,
    "max_epochs": 100000,
    "patience": 100000,
    "seed": SEED,
}
#: shuffled copies of the training lines: an epoch long enough to be worth a validation pass
REPEATS = 20

UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int) -> str:
    """English words for 0 <= n <= 999 ("three hundred twelve", "forty two", "zero")."""
    hundreds, rest = divmod(n, 100)
    parts = [f"{UNITS[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        parts.append(TENS[rest // 10] + (f" {UNITS[rest % 10]}" if rest % 10 else ""))
    elif rest >= 10:
        parts.append(TEENS[rest - 10])
    elif rest or not hundreds:
        parts.append(UNITS[rest])
    return " ".join(parts)


def splits() -> dict[str, list[int]]:
    """The numbers of each split: test and validation drawn at random, the rest for training."""
    numbers = list(range(1000))
    random.Random(SEED).shuffle(numbers)
    test, val = numbers[:TEST_NUMBERS], numbers[TEST_NUMBERS : TEST_NUMBERS + VAL_NUMBERS]
    return {"train": sorted(numbers[TEST_NUMBERS + VAL_NUMBERS :]), "val": sorted(val), "test": sorted(test)}


def corpus(numbers: list[int], repeats: int = 1) -> str:
    """Lines "words=digits", `repeats` shuffled copies."""
    lines = [f"{words(n)}={n}" for n in numbers]
    out = []
    for r in range(repeats):
        random.Random(SEED + r).shuffle(lines)
        out += lines
    return "\n" + "\n".join(out) + "\n"


def prompt(model, source: str) -> torch.Tensor:
    """The token ids of a line's start up to "=": the prefix that conditions the translation."""
    return model.encode(f"\n{source}=")


def first_digit_picture(model, rows: list[dict]) -> dict[str, list[float]]:
    """Bars of p(first digit | words) for up to three right and three wrong translations."""
    right = [r for r in rows if r["greedy"] == r["target"]][::40][:3]
    wrong = [r for r in rows if r["greedy"] != r["target"]][:3]
    shown = right + wrong
    fig, axes = plt.subplots(1, len(shown), figsize=(2.4 * len(shown), 2.6), sharey=True, squeeze=False)
    probs = {}
    for ax, r in zip(axes[0], shown):
        start = prompt(model, r["source"])
        with torch.no_grad():
            p = [float(model.log_prob(model.encode(d)[None], cond=start).exp()) for d in "0123456789"]
        probs[r["source"]] = [round(v, 4) for v in p]
        ok = r["greedy"] == r["target"]
        ax.bar(
            range(10), p, color=["tab:green" if str(d) == r["target"][0] else "tab:gray" for d in range(10)]
        )
        ax.set_xticks(range(10))
        ax.set_title(f"{r['source']}\n→ {r['greedy']} ({'right' if ok else 'wrong'})", fontsize=8)
        ax.set_xlabel("first digit", fontsize=8)
    axes[0, 0].set_ylabel("p(first digit | words)")
    fig.suptitle(
        "The translation model's first digit for unseen numbers (green: the correct one)", fontsize=9
    )
    fig.tight_layout()
    save_figure(fig, "translation_numbers")
    return probs


def main() -> None:
    started = time.time()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    numbers = splits()
    texts = {
        "train": corpus(numbers["train"], REPEATS),
        "val": corpus(numbers["val"]),
        "test": corpus(numbers["test"]),
    }
    data = dataset_from_splits("numbers", texts, "English number words = digits, 0-999")
    torch.manual_seed(SEED)
    model = build_model("transformer", vocab=data.tokenizer.vocab, **MODEL)
    with tempfile.TemporaryDirectory() as folder:
        result = chainrule.fit(model, data, chainrule.TrainConfig(**TRAIN), Path(folder) / "run", force=True)
        model = chainrule.load(result.model_dir).eval()
    rows, nll = [], 0.0
    for n in numbers["test"][:: TEST_NUMBERS // SCORED]:
        source, target = words(n), str(n)
        start = prompt(model, source)
        with torch.no_grad():
            out = model.generate(start, 5, top_k=1)[0, len(start) :]
            guess = model.decode(out).split("\n")[0]
            log_p = float(model.log_prob(model.encode(target + "\n")[None], cond=start))
        nll -= log_p
        rows.append({"source": source, "target": target, "greedy": guess, "log_p_target": round(log_p, 4)})
    wrong = [r for r in rows if r["greedy"] != r["target"]]
    correct = len(rows) - len(wrong)
    by_size = {}  # exact matches of one- and two-digit numbers (a tenth of the lines) and three-digit ones
    for name, keep in (
        ("below 100", lambda r: len(r["target"]) < 3),
        ("100-999", lambda r: len(r["target"]) == 3),
    ):
        part = [r for r in rows if keep(r)]
        by_size[name] = {"numbers": len(part), "correct": sum(r["greedy"] == r["target"] for r in part)}
    results = {
        "minutes": MINUTES,
        "model": MODEL,
        "train": TRAIN,
        "train_lines": len(numbers["train"]),
        "repeats": REPEATS,
        "test_numbers": len(rows),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(result.train_seconds, 1),
        "best_val_nats_per_char": round(result.best_val_nll, 4),
        "test_exact_match": round(correct / len(rows), 4),
        "test_conditional_nll_nats": round(nll / len(rows), 4),
        "test_exact_match_by_size": by_size,
        "translations": rows,
        "first_digit_probabilities": first_digit_picture(model, rows),
        "quick": QUICK,
    }
    print(
        f"exact match {correct}/{len(rows)}, conditional NLL {nll / len(rows):.3f} nats per translation,"
        f" {by_size}; wrong: {[(r['source'], r['greedy']) for r in wrong[:8]]}"
    )
    print(save_json("translation_numbers", results, started))


if __name__ == "__main__":
    main()
