"""The README's image speed table from benchmarks/results/image_speed.json: training throughput
(eager and compiled, per batch size) with its fractions of the peaks, cached vs generic sampling,
and the before/after comparison of benchmarks/image_speed_before_after.py. Used by
scripts/update_readme.py."""

from __future__ import annotations

import sys

from readme_benchmark_tables import ROOT, load_phrase, result

#: rows of the image speed table (benchmarks/image_speed.py's MODELS), in order
IMAGE_MODELS = ("gated-pixelcnn", "pixelcnn", "row-lstm", "diagonal-bilstm")


def image_speed_cells(model: dict, suffix: str) -> tuple[str, str, str]:
    """(images/s bf16 (fp32), fraction of the conv peak bf16, fraction of the matmul peak bf16
    (fp32)) of one training mode and batch of an image_speed model (`suffix`: "" eager,
    " compiled", then ", batch N" for a batch other than the recipes'), or dashes where that was
    not timed."""
    t, f = model.get("bf16-mixed" + suffix), model.get("fp32" + suffix)
    if t is None or f is None:
        return "–", "–", "–"
    return (
        f"{t['images_per_s']} ({f['images_per_s']})",
        f"{t['fraction_of_conv_peak']:.2f}",
        f"{t['fraction_of_matmul_peak']:.2f} ({f['fraction_of_matmul_peak']:.2f})",
    )


def image_speed_table() -> str:
    """Cached vs generic sampling and training throughput of the image models, a row per model
    and batch size (sampling on the recipes' batch row)."""
    r = result("image_speed")
    if r is None:
        return "_Run `python -m benchmarks.image_speed` to fill this table._"
    peaks = r["peaks_gflops"]
    rows = [
        "| model | parameters | batch | train images/s bf16 (fp32): eager | compiled | of conv peak, bf16:"
        " eager | compiled | of matmul peak, bf16 (fp32): eager | compiled | sampling 28×28: cached |"
        " generic | speed-up | same images |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = (r["batch"], *r.get("more_batches", []))
    for m in r["models"]:
        s = m["sampling_28x28"]
        name = m["model"] if m.get("recipe_model", True) else f"{m['model']} (recipe's sizes)"
        for size in sizes:
            batch = "" if size == r["batch"] else f", batch {size}"
            eager, compiled = (image_speed_cells(m, mode + batch) for mode in ("", " compiled"))
            sampled = (
                f" {s['cached_seconds']:.1f} s | {s['generic_seconds']:.1f} s | **{s['speedup']:.0f}×** |"
                f" {'yes' if s['identical_images'] else 'no'} |"
                if not batch
                else " | | | |"
            )
            first = (name, f"{m['parameters']:,}") if not batch else ("", "")
            rows.append(
                f"| {first[0]} | {first[1]} | {size} |"
                f" {eager[0]} | {compiled[0]} | {eager[1]} | {compiled[1]} | {eager[2]} | {compiled[2]} |"
                + sampled
            )
    measured = {m["model"] for m in r["models"]}
    for name in IMAGE_MODELS:
        if name not in measured:
            rows.append(f"| {name} | not measured yet: rerun the benchmark | | | | | | | | | | | |")
    counted = (
        "the matmuls and convolutions of a forward and backward pass (torch.utils.flop_counter)"
        if r["models"] and "train_gflop_per_image" in r["models"][0]
        else "the convolutions, a training step counted as 3 forward passes"
    )
    at_start = (
        f"conv peak bf16 {peaks['conv_bf16']:.0f} GFLOP/s, fp32 {peaks['conv_fp32']:.0f} GFLOP/s, matmul"
        f" peak bf16 {peaks['matmul_bf16']:.0f} GFLOP/s, fp32 {peaks['matmul_fp32']:.0f} GFLOP/s"
    )
    beside = r["models"] and "peaks_beside_gflops" in r["models"][0].get("bf16-mixed", {})
    both_kinds = "conv_channels_last_bf16" in peaks
    kernels = (
        "the conv peak the best 3 × 3 convolution in either layout, (N, C, H, W) or channels-last, the"
        " matmul peak the best product through MKL (torch.mm) or oneDNN; rounds of each peak kernel"
        if both_kinds
        else "rounds of one peak convolution, one peak matmul"
    )
    peak_phrase = (
        f"fractions of the conv and matmul peaks timed beside each row ({kernels} and one training"
        f" step, best of each; at the run's start: {at_start})"
        if beside
        else at_start
    )
    batches = " and ".join(map(str, sizes))
    rows.append("")
    rows.append(
        f"Measured {r['machine']['date'][:10]} on {r['machine']['cores']} cores ({r['machine']['cpu']}),"
        f" {load_phrase(r['machine'])}; {peak_phrase},"
        f" {r['models'][0]['sampling_28x28']['images'] if r['models'] else '?'} images per sampling"
        f" run, batch {batches} for training (the recipes train at {r['batch']});"
        " *compiled*: the objective through torch.compile, as"
        " `train.compile: true` (the Gated PixelCNN's and PixelRNN's recipes' setting; PixelCNN's"
        f" trains eager) trains. FLOPs: {counted}; both PixelRNN"
        " layer types are measured at"
        " recipes/pixelrnn-mnist.yaml's sizes (their work is mostly matmuls: hence the matmul peak's"
        " column)."
        " Reproduce: `python -m benchmarks.image_speed`."
    )
    if "before_after" in r:
        rows += ["", *before_after_lines(r["before_after"])]
    for earlier in r.get("earlier_before_afters", []):
        rows += ["", *before_after_lines(earlier, "an earlier change")]
    return "\n".join(rows)


def how_compared(ba: dict) -> str:
    """How benchmarks.image_speed_before_after timed the two versions."""
    if ba.get("side_by_side"):
        return (
            f"{ba['rounds']} rounds with both versions side by side, one thread each on its own core;"
            " speed-up: the median of the rounds' ratios; images/s: each version's best round"
        )
    return f"best of {ba['rounds']} alternating rounds"


def before_after_lines(ba: dict, which: str = "the last change") -> list[str]:
    """The training-throughput table of benchmarks.image_speed_before_after."""
    lines = [
        f"Training before and after {which} ({ba['before']} → {ba['after']}), measured in one"
        f" run ({ba['machine']['date'][:10]}, {ba['machine']['cpu']}, {how_compared(ba)}):",
        "",
        "| model, precision | images/s before | after | speed-up | of matmul peak before | after |"
        " of conv peak before | after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in ba["rows"].items():
        b, a = row["before"], row["after"]
        lines.append(
            f"| {key} | {b['images_per_s']} | {a['images_per_s']} | {row['speedup']:.2f}× |"
            f" {b['fraction_of_matmul_peak']:.2f} | {a['fraction_of_matmul_peak']:.2f} |"
            f" {b['fraction_of_conv_peak']:.2f} | {a['fraction_of_conv_peak']:.2f} |"
        )
    reading = f"{ba['reading']} " if ba.get("reading") else ""
    lines += [
        "",
        f"{reading}Reproduce: `{before_after_command(ba)}`.",
    ]
    return lines


def before_after_command(ba: dict) -> str:
    """The command that made a before/after comparison (the benchmark knows its own defaults)."""
    sys.path.insert(0, str(ROOT))  # run as a script: make the benchmarks package importable
    from benchmarks.image_speed_before_after import command

    return command(ba)
