"""Shared by the experiment scripts: where results go, JSON/PNG writing, and the SMS features."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from chainrule.data.sms_spam import SMSSpam, Vocabulary, sms_spam  # noqa: E402

# The tests run every script with CHAINRULE_EXAMPLES_QUICK=1 (small settings, well under a minute)
# and CHAINRULE_EXAMPLES_OUT=<a temporary folder>, so the committed pictures are never overwritten
# by a quick run and a script that no longer runs fails the tests.
QUICK = os.environ.get("CHAINRULE_EXAMPLES_QUICK") == "1"
PUBLISHED = Path(__file__).resolve().parent.parent / "docs" / "experiments"
OUT = Path(os.environ.get("CHAINRULE_EXAMPLES_OUT") or PUBLISHED)


def quick_or(full: Any, quick: Any) -> Any:
    """`full` for the published run, `quick` under CHAINRULE_EXAMPLES_QUICK=1 (the tests' smoke run)."""
    return quick if QUICK else full


def save_figure(fig: plt.Figure, name: str) -> Path:
    """Write `docs/experiments/<name>.png` and close the figure."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def save_json(name: str, results: dict[str, Any], started: float) -> Path:
    """Write `docs/experiments/<name>.json` with the results and how they were produced."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    meta = {
        "script": f"examples/{name}.py",
        "seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "quick": QUICK,
    }
    path.write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    return path


def sms_features(min_count: int = 2) -> tuple[SMSSpam, Vocabulary, torch.Tensor, torch.Tensor]:
    """The fixed SMS split, a vocabulary of training words seen >= `min_count` times, and the
    train/test count matrices (float64)."""
    d = sms_spam()
    vocab = Vocabulary(d.train_text, min_count=min_count)
    return d, vocab, vocab.counts(d.train_text).double(), vocab.counts(d.test_text).double()


def summarise_repeats(per_setting: dict[str, list[list[float]]], metric: str) -> dict[str, dict[str, Any]]:
    """Mean and standard error over repeats, per method and setting: {method: {mean_<metric>,
    stderr, raw}} from {method: [[value per repeat] per setting]}."""
    import numpy as np

    return {
        name: {
            f"mean_{metric}": [float(np.mean(v)) for v in values],
            "stderr": [float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0 for v in values],
            "raw": values,
        }
        for name, values in per_setting.items()
    }
