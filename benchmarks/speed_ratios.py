"""The arithmetic of benchmarks/autoregressive_speed.py's results: a row's ratio and its bootstrap
interval from alternated step times, passes combined, the table's summary, the earlier runs kept
in the file, and a partial run merged into it."""

from __future__ import annotations

import statistics

import torch

#: what identifies a row of the table
KEY = ("model", "batch", "precision", "threads", "mode")


def ratio_interval(
    ours: list[float] | list[list[float]],
    theirs: list[float] | list[list[float]],
    level: float = 0.95,
    resamples: int = 2000,
) -> tuple[float, float]:
    """Bootstrap interval (percentile, `level`) of median(theirs) / median(ours): how far the row's
    ratio could move from noise alone. Steps are resampled as adjacent pairs, so a slow moment of
    the machine, which hits both sides of a pair, stays paired. Given lists of passes (lists of
    steps), each pass is resampled on its own and the ratio is the geometric mean of the passes'
    ratios, as `combine_passes` reports it."""
    passes = (ours, theirs) if ours and isinstance(ours[0], list) else ([ours], [theirs])
    g = torch.Generator().manual_seed(0)
    logs = torch.zeros(resamples, dtype=torch.float64)
    for a, b in zip(*passes):
        pairs = torch.tensor(list(zip(a, b)), dtype=torch.float64)
        picks = pairs[torch.randint(len(pairs), (resamples, len(pairs)), generator=g)]
        logs += (picks[..., 1].median(1).values / picks[..., 0].median(1).values).log()
    ratios = (logs / len(passes[0])).exp()
    tail = (1 - level) / 2
    low, high = torch.quantile(ratios, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high


def ratios(times_ours: list[float], times_ref: list[float], batch: int) -> dict:
    """Images/s of both sides from the medians of their steps, their ratio and its interval."""
    t_ours, t_ref = statistics.median(times_ours), statistics.median(times_ref)
    return {
        "chainrule_images_per_s": batch / t_ours,
        "reference_images_per_s": batch / t_ref,
        "ratio": t_ref / t_ours,
        "ratio_95": ratio_interval(times_ours, times_ref),
        "steps": len(times_ours),
    }


def combine_passes(passes: list[list[dict]]) -> list[dict]:
    """One row per configuration from several passes over the grid (each pass times every row
    once, so a row's passes lie minutes apart): the geometric mean of the passes' ratios, each
    pass's own ratio listed (`pass_ratios`: how far the machine moved a row between windows), and
    the images/s averaged. Pooling the steps instead let a window where the machine was busy for
    both sides tip the two medians onto different windows (passes 0.96 and 1.13 pooled to 0.91);
    rows of a single pass are returned as they are."""
    if len(passes) == 1:
        return [{k: v for k, v in row.items() if k != "times"} for row in passes[0]]
    out = []
    for same in zip(*passes):
        keys = {k: same[0][k] for k in KEY}
        ratio = statistics.geometric_mean([r["ratio"] for r in same])
        out.append(
            {
                **keys,
                "chainrule_images_per_s": statistics.fmean(r["chainrule_images_per_s"] for r in same),
                "reference_images_per_s": statistics.fmean(r["reference_images_per_s"] for r in same),
                "ratio": ratio,
                "ratio_95": ratio_interval([r["times"][0] for r in same], [r["times"][1] for r in same]),
                "steps": sum(r["steps"] for r in same),
                "pass_ratios": [r["ratio"] for r in same],
            }
        )
        if "parallel_speedup" in same[0]:
            out[-1]["pass_parallel_speedups"] = [r["parallel_speedup"] for r in same]
    return out


def summary(rows: list[dict]) -> str:
    """How many rows have chainrule at least as fast, and how many are slower beyond the noise
    (the whole 95 % interval below 1)."""
    slow = [r for r in rows if r["ratio"] < 1.0]
    head = f"{len(rows) - len(slow)} of {len(rows)} rows with chainrule at least as fast as the reference"
    if not all("ratio_95" in r for r in rows):
        return head
    clearly = [r for r in slow if r["ratio_95"][1] < 1.0]
    return f"{head}; {len(clearly)} slower beyond the noise (95 % interval below 1)"


def with_history(result: dict, previous: dict | None, keep: int = 6) -> dict:
    """`result` with the earlier runs' ratios (date, then (model, batch, precision, threads, mode,
    ratio) rows) from the file it replaces, the newest `keep`: one run on a shared machine can be
    off, and a row's spread across runs shows by how much."""
    history = dict((previous or {}).get("earlier_runs", {}))
    if previous and "training" in previous:
        date = previous.get("machine", {}).get("date", "unknown date")
        history[date] = [
            [r["model"], r["batch"], r["precision"], r["threads"], r["mode"], round(r["ratio"], 3)]
            for r in previous["training"]
        ]
    return {**result, "earlier_runs": dict(sorted(history.items())[-keep:])}


def merged(result: dict, previous: dict | None) -> dict:
    """`result`'s rows put in place of the same configurations' rows of the file it updates (a
    run of some models, threads or modes), each row dated; the other rows, sampling and the
    summary's count are kept or recomputed over the whole table."""
    if not previous or "training" not in previous:
        return result
    cpu, old_cpu = result["machine"].get("cpu"), previous.get("machine", {}).get("cpu")
    if cpu != old_cpu:
        raise SystemExit(
            f"--merge: the results file was measured on {old_cpu!r}, this run on {cpu!r}; rows of two"
            " machines in one table would not compare: run the whole grid (without --merge)"
        )
    date = result["machine"]["date"]
    new = {tuple(r[k] for k in KEY): {**r, "date": date} for r in result["training"]}
    old_date = previous.get("machine", {}).get("date")
    rows = [new.pop(tuple(r[k] for k in KEY), None) or {"date": old_date, **r} for r in previous["training"]]
    rows += list(new.values())
    sampling = {**previous.get("sampling", {}), **result["sampling"]}
    return {**previous, **result, "training": rows, "sampling": sampling, "summary": summary(rows)}
