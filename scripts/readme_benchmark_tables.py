"""The README's benchmark tables, built from benchmarks/results/*.json.

autoregressive_speed.json (`speed_table`), text_speed.json (`text_speed_table`),
continuous_density.json and deep_nade_wine.json (`continuous_table`, which also lists the
real-valued zoo entries), ood.json (`ood_table`),
pixeldefend.json, generative_classification.json, compression.json, time_to_quality.json and
deep_nade_ensemble_curve.json (`ensemble_curve_table`).
image_speed.json's table is in scripts/readme_image_speed_table.py. scripts/update_readme.py
puts them into README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from readme_zoo_tables import continuous_zoo_lines

ROOT = Path(__file__).resolve().parent.parent


def result(name: str) -> dict | None:
    """benchmarks/results/NAME.json, or None before the benchmark has run."""
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


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
    r = result("text_speed")
    if r is None:
        return "_no results yet: run `python -m benchmarks.text_speed`_"
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
    r = result("autoregressive_speed")
    if r is None:
        return "_no benchmark results yet: run `make bench`_"
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
    r = result("continuous_density")
    if r is None:
        return "_no results yet: run `python -m benchmarks.continuous_density`_"
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
    r = result("deep_nade_wine")
    if r is None:
        return []
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


OOD_SCORES = ("nll", "likelihood_ratio", "input_complexity", "typicality", "typicality_batch_m10")


def ensemble_curve_table() -> str:
    """EoNADE's test NLL against the number of orderings mixed, and its single orderings' spread."""
    r = result("deep_nade_ensemble_curve")
    if r is None:
        return "(run `python -m benchmarks.deep_nade_ensemble_curve`)"
    head = "| orderings mixed | " + " | ".join(str(c["orderings"]) for c in r["curve"]) + " |"
    rule = "|---|" + "---|" * len(r["curve"])
    row = "| test NLL (nats) | " + " | ".join(f"{c['nll_nats']:.2f}" for c in r["curve"]) + " |"
    s = r["single_orderings"]
    return (
        f"{head}\n{rule}\n{row}\n\n{r['images'].capitalize()}, `{r['model_dir']}`. Each ordering alone:"
        f" {s['best_nll']:.2f} to {s['worst_nll']:.2f} (mean {s['mean_nll']:.2f}); measured"
        f" {r['machine']['date'][:10]}."
    )


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

    r = result("pixeldefend")
    return "not run yet" if r is None else format_result(r)


def generative_classification_table() -> str:
    """benchmarks/results/generative_classification.json's markdown table."""
    r = result("generative_classification")
    return "not run yet" if r is None else r["table"]


def compression_table() -> str:
    """benchmarks/results/compression.json: bits per image / character next to gzip, bz2, xz."""
    r = result("compression")
    if r is None:
        return "_not run yet: `python -m benchmarks.compression`_"
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
    r = result("time_to_quality")
    if r is None:
        return "_not run yet: `python -m benchmarks.time_to_quality`_"
    sys.path.insert(0, str(ROOT))  # run as a script: make the benchmarks package importable
    from benchmarks.time_to_quality import format_table

    m, threads = r["machine"], r["threads"]
    dates = " and ".join(sorted({row.get("date", r["date"])[:10] for row in r["models"]}))
    head = (
        f"Measured {dates} on {m['cpu']} ({m['cores']} cores,"
        f" {threads} torch thread{'s' * (threads != 1)},"
        f" {load_phrase(m)}). Validation NLL of {r['validation']}, checked every few seconds of"
        " training; times are at the first check at or below the target (late by at most one"
        " interval) and include `torch.compile`'s first compilation; *training* leaves out every"
        " validation."
    )
    picture = "![validation NLL against wall minutes](benchmarks/results/time_to_quality.png)"
    return f"{head}\n\n{format_table(r)}\n\n{picture}"
