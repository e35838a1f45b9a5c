"""The README's zoo tables, built from zoo/*/metrics.json (one file per trained model).

Binarized-MNIST NLLs (`zoo_table`), 8-bit and conditional image models (`other_image_zoo_table`),
character-level text models (`text_zoo_table`), real-valued models (`continuous_zoo_lines`, part of
the continuous section) and the sample / completion pictures (`image_samples_tables`).
scripts/update_readme.py puts them into README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def zoo_entries() -> Iterator[tuple[str, dict]]:
    """(entry name, metrics.json) of every zoo entry, by name."""
    for path in sorted(ROOT.glob("zoo/*/metrics.json")):
        yield path.parent.name, json.loads(path.read_text())


def training_minutes(m: dict) -> str:
    """A zoo entry's training time for a table cell ("?" when not recorded), marked when it was on a
    GPU (the zoo's targets are for 2 CPU cores)."""
    if not m.get("train_seconds"):
        return "?"
    on_gpu = m.get("accelerator") in ("gpu", "cuda")
    return f"{m['train_seconds'] / 60:.0f} min" + (" (one GPU)" if on_gpu else "")


def parameters_cell(m: dict) -> str:
    """Stored parameters, and the free ones where a mask leaves some unused (FVSBN: D x D stored,
    D(D-1)/2 free weights)."""
    stored, free = m["num_parameters"], m.get("num_free_parameters", m["num_parameters"])
    return f"{stored:,}" if free == stored else f"{stored:,} stored ({free:,} free)"


def condition_of(m: dict) -> str:
    """What a zoo model's likelihood is conditioned on ('' for an unconditional model)."""
    config = m.get("config", {})
    if config.get("num_classes"):
        return "the class label"
    if config.get("lowres_factor"):
        f = config["lowres_factor"]
        return f"the image downsampled {f}x{f}"
    if config.get("grey_levels"):
        return f"its greyscale image ({config['grey_levels']} levels)"
    return ""


def comparable_on_binarized_mnist(m: dict) -> bool:
    """Unconditional binarized-MNIST models: the rows of the main NLL table."""
    return m.get("dataset") == "binarized-mnist" and not condition_of(m)


#: (metrics key, what the member is, the eval flag) of an ensemble's first member scored alone
SINGLE_MEMBER_ROWS = (
    ("test_single_mask", "mask 0", "--masks 1"),
    ("test_single_ordering", "ordering 0", "--orderings 1"),
)


def zoo_table() -> str:
    rows = [
        "| model | test NLL (nats) | ± s.e. | published | training time | epochs | parameters | file |"
        " reproduce |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in zoo_entries():
        if "nats_per_char" in m["test"] or not comparable_on_binarized_mnist(m):
            continue  # text, 8-bit and conditional models have their own tables
        pub = m.get("published") or {}
        rows.append(
            f"| `{name}` | **{m['test']['nll_nats']:.2f}** | {m['test']['stderr_nats']:.2f} |"
            f" {pub.get('nll', '')} | {training_minutes(m)} | {m.get('epochs', '')} |"
            f" {parameters_cell(m)} |"
            f" {m['file_mb']} MB | `{m['command']}` |"
        )
        if "test_elbo" in m:
            e = m["test_elbo"]
            rows.append(
                f"| `{name}` (ELBO) | {e['nll_nats']:.2f} | {e['stderr_nats']:.2f} | | | | | |"
                f" `{m['eval_command']} --k 1` |"
            )
        for key, member, flag in SINGLE_MEMBER_ROWS:
            if key in m:
                s = m[key]
                rows.append(
                    f"| `{name}` ({member} alone) | {s['nll_nats']:.2f} | {s['stderr_nats']:.2f} | | | | | |"
                    f" `{m['eval_command']} {flag}` |"
                )
    return "\n".join(rows)


def other_image_zoo_table() -> str:
    """8-bit and conditional image models: NLL in nats and bits/dim, and what it is conditioned on."""
    rows = [
        "| model | data | conditioned on | test NLL (nats) | ± s.e. | bits/dim | training time | parameters"
        " | file | reproduce |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in zoo_entries():
        if "nats_per_char" in m["test"] or comparable_on_binarized_mnist(m) or "test_log_likelihood" in m:
            continue  # real-valued models are in the continuous section (continuous_zoo_lines)
        t = m["test"]
        rows.append(
            f"| `{name}` | {m['dataset']} | {condition_of(m) or '—'} | **{t['nll_nats']:.2f}** |"
            f" {t['stderr_nats']:.2f} | {t['bits_per_dim']:.3f} | {training_minutes(m)} |"
            f" {parameters_cell(m)} |"
            f" {m['file_mb']} MB | `{m['command']}` |"
        )
    return "\n".join(rows)


def text_zoo_table() -> str:
    rows = [
        "| model | test nats/char | test bits/char | target (nats/char) | training time | parameters | file |"
        " reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in zoo_entries():
        if "nats_per_char" not in m["test"]:
            continue
        t, target = m["test"], m.get("target_nats_per_char")
        met = "" if target is None else f"{target} ({'met' if t['nats_per_char'] <= target else 'not met'})"
        rows.append(
            f"| `{name}` | **{t['nats_per_char']:.3f}** | {t['bits_per_char']:.3f} | {met} |"
            f" {m['train_minutes']:.0f} min | {parameters_cell(m)} | {m['file_mb']} MB |"
            f" `{m['command']}` |"
        )
    return "\n".join(rows)


def continuous_zoo_lines() -> list[str]:
    """Zoo entries of real-valued data (their metrics.json has test_log_likelihood)."""
    rows = []
    for name, m in zoo_entries():
        if "test_log_likelihood" not in m:
            continue
        single = m.get("test_single_ordering")
        one = f"{-single['nll_nats']:.2f}" if single else ""
        pub = (m.get("published") or {}).get("log_likelihood", "")
        rows.append(
            f"| `{name}` | {m['dataset']} (fold 0) | **{m['test_log_likelihood']:.2f}** ±"
            f" {m['test']['stderr_nats']:.2f} | {one} | {pub} | {training_minutes(m)} | `{m['command']}` |"
        )
    if not rows:
        return []
    return [
        "",
        "Zoo entries (fold 0; `chainrule eval` reproduces them, `--orderings 1` the single ordering):",
        "",
        "| model | data | test log-likelihood | single ordering | published (10-fold mean) | training time |"
        " reproduce |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


#: (zoo entry, how the README names it) for the rows of sample and completion pictures
IMAGE_SAMPLE_ROWS = (
    ("gated-pixelcnn-mnist", "Gated PixelCNN"),
    ("pixelcnn-mnist", "PixelCNN"),
    ("pixelrnn-mnist", "PixelRNN (Diagonal BiLSTM)"),
)


def image_samples_tables() -> str:
    """One two-picture table per image zoo entry: its samples and bottom-half completions, captioned
    with the test NLL and sampling time its metrics.json measured."""
    tables = []
    for name, title in IMAGE_SAMPLE_ROWS:
        path = ROOT / "zoo" / name / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        tables.append(
            f"| {title}, {m['test']['nll_nats']:.2f} nats: 64 samples (cached sampler,"
            f" {m['sampling_seconds_64']} s) | completing the bottom half of test images |\n|---|---|\n"
            f"| ![](zoo/{name}/samples.png) | ![](zoo/{name}/completions.png) |"
        )
    return "\n\n".join(tables)
