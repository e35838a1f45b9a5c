"""Regenerate the README's result tables from zoo/*/metrics.json and benchmarks/results/*.json.

    .venv/bin/python scripts/update_readme.py

Tables sit between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers; nothing else changes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def zoo_table() -> str:
    rows = [
        "| model | test NLL (nats) | ± s.e. | published | training time | epochs | parameters | file |"
        " reproduce |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(ROOT.glob("zoo/*/metrics.json")):
        m = json.loads(path.read_text())
        if "nats_per_char" in m["test"] or not comparable_on_binarized_mnist(m):
            continue  # text, 8-bit and conditional models have their own tables
        pub = m.get("published") or {}
        name = path.parent.name
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
        if "test_single_mask" in m:
            s = m["test_single_mask"]
            rows.append(
                f"| `{name}` (mask 0 alone) | {s['nll_nats']:.2f} | {s['stderr_nats']:.2f} | | | | | |"
                f" `{m['eval_command']} --masks 1` |"
            )
    return "\n".join(rows)


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


def other_image_zoo_table() -> str:
    """8-bit and conditional image models: NLL in nats and bits/dim, and what it is conditioned on."""
    rows = [
        "| model | data | conditioned on | test NLL (nats) | ± s.e. | bits/dim | training time | parameters"
        " | file | reproduce |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(ROOT.glob("zoo/*/metrics.json")):
        m = json.loads(path.read_text())
        if "nats_per_char" in m["test"] or comparable_on_binarized_mnist(m) or "test_log_likelihood" in m:
            continue  # real-valued models are in the continuous section (continuous_zoo_lines)
        t = m["test"]
        rows.append(
            f"| `{path.parent.name}` | {m['dataset']} | {condition_of(m) or '—'} | **{t['nll_nats']:.2f}** |"
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
    for path in sorted(ROOT.glob("zoo/*/metrics.json")):
        m = json.loads(path.read_text())
        if "nats_per_char" not in m["test"]:
            continue
        t, target = m["test"], m.get("target_nats_per_char")
        met = "" if target is None else f"{target} ({'met' if t['nats_per_char'] <= target else 'not met'})"
        rows.append(
            f"| `{path.parent.name}` | **{t['nats_per_char']:.3f}** | {t['bits_per_char']:.3f} | {met} |"
            f" {m['train_minutes']:.0f} min | {parameters_cell(m)} | {m['file_mb']} MB |"
            f" `{m['command']}` |"
        )
    return "\n".join(rows)


def load_phrase(machine: dict) -> str:
    """How busy the machine was: the load when the benchmark started says whether others shared it."""
    start = machine.get("load_average_1min_at_start")
    if start is None:
        end = machine.get("load_average_1min")
        if end is None:
            return "load not recorded"
        return f"load average {end:.1f} at the end, its own threads included"
    busy = start >= 0.75 * machine.get("cores", 2)  # most cores already taken by other runs
    state = "shared with other runs" if busy else "otherwise idle"
    return f"load average {start:.1f} when it started: {state}"


def text_speed_table() -> str:
    path = ROOT / "benchmarks/results/text_speed.json"
    if not path.is_file():
        return "_no results yet: run `python -m benchmarks.text_speed`_"
    r = json.loads(path.read_text())
    peak = r["matmul_peak_gflops"]
    load = load_phrase(r["machine"])
    lines = [
        f"Measured {r['machine']['date'][:10]} on {r['machine']['cpu']} ({r['machine']['cores']} cores,"
        f" {r['machine']['torch_threads']} torch thread(s), {load}); matmul peak in the same run:"
        f" {peak['fp32']:.0f} GFLOP/s fp32, {peak['bf16']:.0f} GFLOP/s bf16.",
        "",
        "| training step | precision | batch x length | tokens/s | GFLOP/s | fraction of peak |",
        "|---|---|---|---|---|---|",
    ]
    for t in r["training"]:
        lines.append(
            f"| {t['model']} | {t['precision']} | {t['batch']} x {t['seq_len']} | {t['tokens_per_s']:.0f} |"
            f" {t['gflops']:.1f} | {t['fraction_of_peak']:.2f} |"
        )
    lines += [
        "",
        "| generation of 1,000 tokens | cached | uncached | speed-up | identical tokens |",
        "|---|---|---|---|---|",
    ]
    one_thread = {f"{k}, 1 thread": g for k, g in r.get("generation_one_thread", {}).items()}
    for name, g in {**r["generation"], **one_thread}.items():
        lines.append(
            f"| {name} | {g['cached_s']:.2f} s | {g['uncached_s']:.1f} s | {g['speedup']:.1f}× |"
            f" {g['identical_tokens']} |"
        )
    return "\n".join(lines)


def pass_cell(row: dict) -> str:
    """A row's passes: their ratios, and for several threads the threads' speed-up in each."""
    cell = " ".join(f"{x:.2f}" for x in row.get("pass_ratios", []))
    if row.get("pass_parallel_speedups"):
        cell += "; " + " ".join(f"{x:.1f}x" for x in row["pass_parallel_speedups"])
    return cell


def speed_table() -> str:
    path = ROOT / "benchmarks/results/autoregressive_speed.json"
    if not path.is_file():
        return "_no benchmark results yet: run `make bench`_"
    r = json.loads(path.read_text())
    load = r.get("load_average", {}).get("start")
    intervals = all("ratio_95" in t for t in r["training"])
    passes = any("pass_ratios" in t for t in r["training"])
    dates = sorted({t["date"][:16] for t in r["training"] if "date" in t})
    lines = [
        f"Measured {r['machine']['date'][:10]} on {r['machine']['cpu']} ({r['machine']['cores']} cores"
        + (f", load average {load[0]:.1f} at the start" if load else "")
        + "). ratio = chainrule images/s / reference images/s, medians of alternating steps"
        + ("; 95 % interval: bootstrap over adjacent pairs of steps (the noise alone)." if intervals else ".")
        + (
            " Rows with passes were timed in several windows minutes apart (`--passes`): their ratio"
            " is the geometric mean of the windows' ratios, which the passes column gives (for two"
            " threads, after the semicolon: how much faster two threads ran a plain matmul than one just"
            " before each window, the machine's state: this VM moves between ~1.9 and ~1.5)."
            if passes
            else ""
        )
        + (
            f" Rows were timed at {', '.join(dates)} UTC (`--merge` re-timed some)." if len(dates) > 1 else ""
        ),
        "",
        "| model | batch | precision | threads | mode | chainrule images/s | reference images/s | ratio |"
        + (" 95 % interval |" if intervals else "")
        + (" passes |" if passes else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if intervals else "") + ("---|" if passes else ""),
    ]
    for t in r["training"]:
        lines.append(
            f"| {t['model']} | {t['batch']} | {t['precision']} | {t['threads']} | {t['mode']} |"
            f" {t['chainrule_images_per_s']:.0f} | {t['reference_images_per_s']:.0f} | {t['ratio']:.2f} |"
            + (f" {t['ratio_95'][0]:.2f}-{t['ratio_95'][1]:.2f} |" if intervals else "")
            + (f" {pass_cell(t)} |" if passes else "")
        )
    if "summary" in r:
        lines += ["", r["summary"] + f" ({len(r.get('earlier_runs', {}))} earlier runs' ratios in the JSON)."]
    lines += [
        "",
        "| sampler (784 dims) | n | chainrule | reference | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, s in r["sampling"].items():
        lines.append(
            f"| {name} | {s['n']} | {s['chainrule_s']:.3f} s | {s['reference_s']:.3f} s | {s['ratio']:.1f}× |"
        )
    return "\n".join(lines)


def continuous_table() -> str:
    path = ROOT / "benchmarks/results/continuous_density.json"
    if not path.is_file():
        return "_no results yet: run `python -m benchmarks.continuous_density`_"
    r = json.loads(path.read_text())
    lines = [
        f"Measured {r['machine']['date'][:10]} by `python -m benchmarks.continuous_density`"
        f" ({r['seconds'] / 60:.0f} min on {r['machine']['cores']} cores). Wine: mean test log-likelihood"
        " in nats per wine (higher is better), averaged over the folds run; the mixture's number of"
        " components and covariance floor are chosen on validation data in each fold.",
        "",
        "| data | folds | full-covariance Gaussian | best mixture of Gaussians (EM) | RNADE |"
        " published best |",
        "|---|---|---|---|---|---|",
    ]
    for color, w in r["wine"].items():
        avg = w["average_test_log_likelihood"]
        lines.append(
            f"| {color} wine | {len(w['folds'])} | {avg['gaussian']:.2f} | {avg['mixture']:.2f} |"
            f" **{avg['rnade']:.2f}** | {w['published_best']} |"
        )
    agnostic = []
    for color, w in r["wine"].items():
        oa, single = w.get("order_agnostic_fold0"), w["folds"][0]["rnade"]["test"]
        if oa:
            agnostic.append(f"{color} {oa['test']:.2f} (single-order RNADE on that fold: {single:.2f})")
    if agnostic:
        s = r["wine"]["red"]["order_agnostic_fold0"]["settings"]
        lines += [
            "",
            f"Order-agnostic RNADE ({s['num_orders']} orders, {s['hidden']} hidden units, evaluated as the"
            f" mixture of its orders), fold 0 only: {'; '.join(agnostic)}.",
        ]
    lines += deep_nade_lines()
    d = r["digits17"]
    lines += [
        "",
        "17-level 8×8 digits, test NLL in nats per image (lower is better):",
        "",
        "| model | test NLL | ± s.e. | parameters |",
        "|---|---|---|---|",
    ]
    for name, m in d.items():
        lines.append(f"| {name} | {m['nll_nats']:.2f} | {m['stderr_nats']:.2f} | {m['parameters']:,} |")
    stab = r["rnade_seed_stability"]
    lines += [
        "",
        f"RNADE on red wine from {len(stab['runs'])} seeds: every loss and score finite:"
        f" {stab['all_finite']}. Densities fitted to Old Faithful:",
        "",
        "![Old Faithful densities](docs/continuous/faithful-densities.png)",
    ]
    return "\n".join(lines)


def deep_nade_lines() -> list[str]:
    """The deep order-agnostic RNADE rows (benchmarks/results/deep_nade_wine.json), if measured."""
    path = ROOT / "benchmarks/results/deep_nade_wine.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    lines = [
        "",
        f"Deep order-agnostic RNADE (`deep-rnade`, Uria et al. 2014), measured {r['machine']['date'][:10]} by"
        " `python -m benchmarks.deep_nade_wine`: mean test log-likelihood over the folds (± standard error"
        " over folds), as the ensemble of its orderings (EoRNADE, the paper's figure) and in one ordering:",
        "",
        "| data | folds | settings | ensemble | single ordering | published EoRNADE | s per fold |",
        "|---|---|---|---|---|---|---|",
    ]
    for color, w in r["wine"].items():
        avg, se, s = w["average_test_log_likelihood"], w["stderr_over_folds"], w["settings"]
        setting = (
            f"{s['layers']}×{s['hidden']} ReLU, {s['components']} Gaussians, {w['num_orderings']} orderings"
        )
        lines.append(
            f"| {color} wine | {len(w['folds'])} | {setting} |"
            f" **{avg['ensemble']:.2f}** ± {se['ensemble']:.2f} | {avg['single']:.2f} ± {se['single']:.2f} |"
            f" {w['published']} | {w['mean_seconds_per_fold']:.0f} |"
        )
    return lines + continuous_zoo_lines()


def continuous_zoo_lines() -> list[str]:
    """Zoo entries of real-valued data (their metrics.json has test_log_likelihood)."""
    rows = []
    for path in sorted(ROOT.glob("zoo/*/metrics.json")):
        m = json.loads(path.read_text())
        if "test_log_likelihood" not in m:
            continue
        single = m.get("test_single_ordering")
        one = f"{-single['nll_nats']:.2f}" if single else ""
        pub = (m.get("published") or {}).get("log_likelihood", "")
        rows.append(
            f"| `{path.parent.name}` | {m['dataset']} (fold 0) | **{m['test_log_likelihood']:.2f}** ±"
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


#: rows of the image speed table (benchmarks/image_speed.py's MODELS), in order
IMAGE_MODELS = ("gated-pixelcnn", "pixelcnn", "row-lstm", "diagonal-bilstm")


def image_speed_table() -> str:
    """Cached vs generic sampling and training throughput of the image models."""
    path = ROOT / "benchmarks/results/image_speed.json"
    if not path.is_file():
        return "_Run `python -m benchmarks.image_speed` to fill this table._"
    r = json.loads(path.read_text())
    peaks = r["peaks_gflops"]
    rows = [
        "| model | parameters | train images/s (bf16) | of conv peak | sampling 28×28: cached | generic |"
        " speed-up | same images |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in r["models"]:
        s, t = m["sampling_28x28"], m["bf16-mixed"]
        name = m["model"] if m.get("recipe_model", True) else f"{m['model']} (recipe's sizes)"
        rows.append(
            f"| {name} | {m['parameters']:,} | {t['images_per_s']} | {t['fraction_of_conv_peak']:.2f} |"
            f" {s['cached_seconds']:.1f} s | {s['generic_seconds']:.1f} s | **{s['speedup']:.0f}×** |"
            f" {'yes' if s['identical_images'] else 'no'} |"
        )
    measured = {m["model"] for m in r["models"]}
    for name in IMAGE_MODELS:
        if name not in measured:
            rows.append(f"| {name} | not measured yet: rerun the benchmark | | | | | | |")
    counted = (
        "the matmuls and convolutions of a forward and backward pass (torch.utils.flop_counter)"
        if r["models"] and "train_gflop_per_image" in r["models"][0]
        else "the convolutions, a training step counted as 3 forward passes"
    )
    rows.append("")
    rows.append(
        f"Measured {r['machine']['date'][:10]} on {r['machine']['cores']} cores ({r['machine']['cpu']}),"
        f" {load_phrase(r['machine'])};"
        f" conv peak bf16 {peaks['conv_bf16']:.0f} GFLOP/s, fp32 {peaks['conv_fp32']:.0f} GFLOP/s,"
        f" {r['models'][0]['sampling_28x28']['images'] if r['models'] else '?'} images per sampling"
        f" run, batch 64 for training. FLOPs: {counted}; both PixelRNN layer types are measured at"
        " recipes/pixelrnn-mnist.yaml's sizes (the Diagonal BiLSTM's work is mostly matmuls: the JSON"
        " also gives each model's fraction of the matmul peak)."
        " Reproduce: `python -m benchmarks.image_speed`."
    )
    return "\n".join(rows)


def replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md lacks the {name} markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


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


OOD_SCORES = ("nll", "likelihood_ratio", "input_complexity", "typicality", "typicality_batch_m10")


def ood_table() -> str:
    """AUROC of every OOD score, one row per (model, in-distribution data, OOD data) of ood.json."""
    runs = json.loads((ROOT / "benchmarks/results/ood.json").read_text())["runs"]
    rows = [
        "| model | trained on | scored against | NLL | likelihood ratio | input complexity | typicality"
        " | typicality (batches of 10) | background model of the ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        cells = [f"{r['scores'][k]['auroc']:.3f}" if k in r["scores"] else "" for k in OOD_SCORES]
        if r.get("background_dir"):
            cells.append(f"`{r['background_dir']}`")
        else:  # the independent-pixel model's background is counted, not trained
            cells.append("counted on perturbed training images" if r.get("background") else "")
        rows.append(f"| {r['model']} | {r['data']} | {r['ood_data']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def pixeldefend_table() -> str:
    """benchmarks/results/pixeldefend.json as its benchmark prints it."""
    sys.path.insert(0, str(ROOT))  # run as a script: make the benchmarks package importable
    from benchmarks.pixeldefend import format_result

    path = ROOT / "benchmarks/results/pixeldefend.json"
    return format_result(json.loads(path.read_text())) if path.is_file() else "not run yet"


def generative_classification_table() -> str:
    """benchmarks/results/generative_classification.json's markdown table."""
    path = ROOT / "benchmarks/results/generative_classification.json"
    return json.loads(path.read_text())["table"] if path.is_file() else "not run yet"


def compression_table() -> str:
    """benchmarks/results/compression.json: bits per image / character next to gzip, bz2, xz."""
    path = ROOT / "benchmarks/results/compression.json"
    if not path.is_file():
        return "_not run yet: `python -m benchmarks.compression`_"
    r = json.loads(path.read_text())
    lines = []
    for part in ("images", "text"):
        p = r[part]
        n = p.get("n", p.get("chars"))
        lines += [
            "",
            f"{p['data']}, {n:,} {p['unit']}s: bits per {p['unit']} (whole file, header included)",
            "",
            f"| coder | bits per {p['unit']} | code vs −log₂ p(x) | round trip |",
            "|---|---|---|---|",
        ]
        for row in p["rows"]:
            extra = "| | |"
            if "overhead_percent" in row:
                ok = "exact" if row["round_trip_exact"] else "FAILED"
                extra = f"| {row['overhead_percent']:+.3f} % | {ok} ({row['decoded']:,} decoded) |"
            lines.append(f"| {row['coder']} | {row['bits_per_unit']:.2f} {extra}")
    return "\n".join(lines[1:])


def time_to_quality_table() -> str:
    """benchmarks/results/time_to_quality.json: the wall time to a validation NLL, and its picture."""
    path = ROOT / "benchmarks/results/time_to_quality.json"
    if not path.is_file():
        return "_not run yet: `python -m benchmarks.time_to_quality`_"
    sys.path.insert(0, str(ROOT))  # run as a script: make the benchmarks package importable
    from benchmarks.time_to_quality import format_table

    r = json.loads(path.read_text())
    m, threads = r["machine"], r["threads"]
    head = (
        f"Measured {r['date'][:10]} on {m['cpu']} ({m['cores']} cores,"
        f" {threads} torch thread{'s' * (threads != 1)},"
        f" {load_phrase(m)}). Validation NLL of {r['validation']}, checked every few seconds of"
        " training; times are at the first check at or below the target (late by at most one"
        " interval) and include `torch.compile`'s first compilation; *training* leaves out every"
        " validation."
    )
    picture = "![validation NLL against wall minutes](benchmarks/results/time_to_quality.png)"
    return f"{head}\n\n{format_table(r)}\n\n{picture}"


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = replace(text, "zoo", zoo_table())
    text = replace(text, "speed", speed_table())
    text = replace(text, "continuous", continuous_table())
    text = replace(text, "image-speed", image_speed_table())
    text = replace(text, "image-samples", image_samples_tables())
    if "<!-- image-zoo:start -->" in text:
        text = replace(text, "image-zoo", other_image_zoo_table())
    if "<!-- ood:start -->" in text:
        text = replace(text, "ood", ood_table())
        text = replace(text, "pixeldefend", "```text\n" + pixeldefend_table() + "\n```")
        text = replace(text, "generative-classification", generative_classification_table())
    if "<!-- compression:start -->" in text:
        text = replace(text, "compression", compression_table())
    if "<!-- text-zoo:start -->" in text:
        text = replace(text, "text-zoo", text_zoo_table())
        text = replace(text, "text-speed", text_speed_table())
    if "<!-- time-to-quality:start -->" in text:
        text = replace(text, "time-to-quality", time_to_quality_table())
    readme.write_text(text)


if __name__ == "__main__":
    main()
