"""`chainrule bench` writes its JSON; the scaling estimate is consistent; `chainrule data` makes
array datasets that `chainrule train --data mmap:PATH` trains on."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from chainrule import cli
from chainrule.benchmark.scaling import allreduce_ms, estimate
from chainrule.benchmark.suite import run_suite
from chainrule.errors import ChainruleError


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_bench_scaling_part_writes_json_with_ratios(tmp_path) -> None:
    code, out, err = run_cli("bench", "--only", "scaling", "--out", str(tmp_path))
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "bench_summary.json").read_text())
    assert summary["machine"]["cores"] >= 1 and summary["settings"]["parts"] == ["scaling"]
    assert result["ratios"]["estimated efficiency, 1 GPUs (per-GPU batch 128)"] == 1.0
    scaling = json.loads((tmp_path / "bench_scaling.json").read_text())
    assert [r["gpus"] for r in scaling["weak_scaling_per_gpu_batch_128"]] == [1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ChainruleError, match="unknown benchmark part"):
        run_suite(tmp_path, only=["everything"])


def test_scaling_estimate_is_consistent() -> None:
    rows = estimate(per_gpu_batch=128)
    assert rows[0]["allreduce_ms"] == 0 and rows[0]["efficiency"] == 1.0
    eff = [r["efficiency"] for r in rows]
    assert eff == sorted(eff, reverse=True) and all(0 < e <= 1 for e in eff)
    volume = [r["allreduce_mb_sent_per_gpu"] for r in rows]
    assert volume[1] == pytest.approx(4 * 3_138_784 / 2**20, rel=1e-3)  # 2(N-1)/N = 1 at N = 2
    assert volume[-1] == pytest.approx(2 * 63 / 64 * 4 * 3_138_784 / 2**20, rel=1e-3)
    assert allreduce_ms(12.6e6, 16) > allreduce_ms(12.6e6, 8)  # leaving the node costs
    big = estimate(per_gpu_batch=2048)
    assert all(b["efficiency"] >= s["efficiency"] for b, s in zip(big, rows))


def test_data_synth_info_and_train_from_the_cli(tmp_path) -> None:
    path = tmp_path / "syn"
    code, out, err = run_cli("data", "synth", str(path), "--n", "700", "--val", "100", "--test", "50")
    assert code == 0, err
    info = json.loads(out)
    assert info["rows"] == {"train": 700, "val": 100, "test": 50} and info["dim"] == 784
    assert info["bytes"] > 850 * 784 and info["use_with"] == f"--data mmap:{path}"
    code, out, err = run_cli("data", "info", str(path))
    assert code == 0 and json.loads(out)["rows"]["train"] == 700
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {name: made, hidden: [16]}\ndata: {name: digits}\n"
        "train: {batch_size: 100, max_epochs: 1, progress: false}\n"
    )
    code, out, err = run_cli("train", str(recipe), "--data", f"mmap:{path}", "--out", str(tmp_path / "run"))
    assert code == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["dataset"] == "synthetic-digits-28" and metrics["test"]["n"] == 50
    code, out, err = run_cli("data", "info", str(tmp_path / "nothing"))
    assert code == 2 and "does not exist" in err


def test_image_speed_quick_mode_measures_every_image_model() -> None:
    """benchmarks/image_speed.py --quick (tiny models on 12x12): every row, identical samples,
    matmul and convolution FLOPs counted for forward and backward (PixelRNN's included)."""
    from benchmarks.image_speed import run

    result = run(batch=4, sample_n=1, quick=True)
    rows = {m["model"]: m for m in result["models"]}
    assert list(rows) == ["gated-pixelcnn", "pixelcnn", "row-lstm", "diagonal-bilstm"]
    assert rows["diagonal-bilstm"]["recipe_model"] and not rows["row-lstm"]["recipe_model"]
    for m in rows.values():
        assert m["sampling_28x28"]["identical_images"] and m["sampling_28x28"]["image_shape"] == [12, 12]
        forward, train = m["forward_gflop_per_image"], m["train_gflop_per_image"]
        assert 2 * forward < train < 3 * forward
        assert m["bf16-mixed"]["images_per_s"] > 0 and m["fp32"]["fraction_of_matmul_peak"] > 0
        # the peaks are timed beside every row, each the best of its kernels
        for row in (m["fp32"], m["bf16-mixed"]):
            beside = row["peaks_beside_gflops"]
            assert beside["conv"] == max(beside["conv_nchw"], beside["conv_channels_last"]) > 0
            assert beside["matmul"] == max(beside["matmul_mm"], beside["matmul_onednn"]) > 0
    assert result["peaks_gflops"]["conv_bf16"] == max(
        result["peaks_gflops"]["conv_nchw_bf16"], result["peaks_gflops"]["conv_channels_last_bf16"]
    )


def test_image_speed_rows_are_keyed_by_precision_mode_and_batch() -> None:
    """Rows at the recipes' batch keep their plain keys; other batches are suffixed."""
    from benchmarks.image_speed import row_key

    assert row_key("bf16-mixed", "eager", 64, 64) == "bf16-mixed"
    assert row_key("fp32", "compiled", 64, 64) == "fp32 compiled"
    assert row_key("bf16-mixed", "compiled", 256, 64) == "bf16-mixed compiled, batch 256"


def test_image_speed_results_keep_the_replaced_run_and_other_sections() -> None:
    """A new image_speed run moves the replaced file's run to previous_run and keeps the sections
    other scripts added (image_speed_compare's before/after)."""
    from benchmarks.image_speed import keeping_earlier

    old = {
        "machine": {"date": "d0"},
        "batch": 64,
        "peaks_gflops": {},
        "models": [1],
        "before_after": {"x": 1},
    }
    new = {"batch": 64, "peaks_gflops": {"conv_bf16": 1.0}, "models": [2]}
    out = keeping_earlier(new, {**old, "previous_run": {"models": [0]}})
    assert out["models"] == [2] and out["before_after"] == {"x": 1}
    assert out["previous_run"] == {"machine": {"date": "d0"}, "batch": 64, "peaks_gflops": {}, "models": [1]}
    assert keeping_earlier(new, None) == new


def test_autoregressive_speed_quick_compares_with_the_references() -> None:
    """The benchmark's quick mode times chainrule against its plain references, same weights."""
    from benchmarks.autoregressive_speed import main, make_pair

    for name in ["fvsbn", "nade-20", "made-30"]:
        model, ref = make_pair(name)
        x = torch.bernoulli(torch.full((4, 784), 0.3))
        assert torch.allclose(model.log_prob(x), ref.log_prob(x), atol=1e-3)
    out = main(quick=True, models=["fvsbn", "made-30"])
    assert {(r["model"], r["batch"], r["threads"]) for r in out["training"]} == {
        ("fvsbn", 128, 1),
        ("made-30", 128, 1),
    }
    assert all(r["ratio"] > 0 for r in out["training"]) and out["machine"]["cores"] >= 1
    assert all(low <= r["ratio"] <= high for r in out["training"] for low, high in [r["ratio_95"]])
    assert out["summary"].startswith(f"{sum(r['ratio'] >= 1 for r in out['training'])} of 2 rows")
    assert set(out["sampling"]) == {"fvsbn", "made-30"}


def test_speed_ratio_interval_covers_the_noise_and_excludes_a_real_gap() -> None:
    """The bootstrap interval of a row's ratio contains 1 for two equally fast sides with noisy
    steps, and lies below 1 when chainrule's steps are 10 % slower."""
    from benchmarks.speed_ratios import ratio_interval, summary

    g = torch.Generator().manual_seed(1)
    noise = (1 + 0.05 * torch.rand(2, 60, generator=g)).tolist()
    low, high = ratio_interval(noise[0], noise[1])
    assert low < 1 < high and high - low < 0.1
    low, high = ratio_interval([1.1 * t for t in noise[0]], noise[1])
    assert high < 1
    rows = [{"ratio": 0.9, "ratio_95": (low, high)}, {"ratio": 1.02, "ratio_95": (0.99, 1.05)}]
    assert summary(rows) == (
        "1 of 2 rows with chainrule at least as fast as the reference; 1 slower beyond the noise"
        " (95 % interval below 1)"
    )


def test_speed_results_keep_the_earlier_runs_ratios() -> None:
    """Writing a new run keeps the replaced file's ratios under its date (and its own earlier
    runs), the newest few only."""
    from benchmarks.speed_ratios import with_history

    row = {
        "model": "fvsbn",
        "batch": 128,
        "precision": "fp32",
        "threads": 1,
        "mode": "eager",
        "ratio": 0.98765,
    }
    previous = {"machine": {"date": "2026-12-01"}, "training": [row], "earlier_runs": {"2026-11-30": []}}
    out = with_history({"training": []}, previous)
    assert out["earlier_runs"] == {
        "2026-11-30": [],
        "2026-12-01": [["fvsbn", 128, "fp32", 1, "eager", 0.988]],
    }
    many = {"earlier_runs": {f"2026-11-{d:02d}": [] for d in range(1, 20)}}
    assert list(with_history({}, many, keep=3)["earlier_runs"]) == ["2026-11-17", "2026-11-18", "2026-11-19"]
    assert with_history({}, None) == {"earlier_runs": {}}


def test_time_to_quality_quick_writes_curves_and_times(tmp_path) -> None:
    """benchmarks/time_to_quality.py --quick (tiny recipes on 8x8 digits): a row per model with its
    time to the target or why it stopped, a validation curve, the JSON and the picture, and the
    README table made from the JSON."""
    from benchmarks.time_to_quality import format_table, main

    result = main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "time_to_quality.json").read_text())
    assert (tmp_path / "time_to_quality.png").stat().st_size > 0
    assert saved["quick"] and saved["machine"]["cores"] >= 1 and saved["target_nll"] == result["target_nll"]
    assert [r["model"] for r in saved["models"]] == ["made", "nade", "gated-pixelcnn"]
    for r in saved["models"]:
        assert r["curve"] and r["steps"] > 0 and r["stopped_by"] in ("target", "max_minutes", "recipe")
        times = r["elapsed_seconds"]
        assert times["train"] <= times["total"] and times["validation_checks"] >= 0
        if r["reached"]:
            t = r["seconds_to_target"]
            assert t["train"] <= t["total"] and r["curve"][-1]["val_nll"] <= saved["target_nll"]
        else:
            assert r["seconds_to_target"] is None
    assert any(r["reached"] for r in saved["models"])
    assert "| made |" in format_table(saved)


def test_parallel_speedup_measures_the_threads_against_one() -> None:
    """The machine-state probe of multi-thread rows gives a plausible speed-up of the threads: a
    positive ratio below the thread count's twice. Not above a floor: beside another test worker on
    2 cores, two threads can run at a tenth of one (0.19 seen under pytest-xdist, 2026-12-07)."""
    from benchmarks.autoregressive_speed import parallel_speedup

    before = torch.get_num_threads()
    try:
        assert 0 < parallel_speedup(2, reps=3) < 4
    finally:
        torch.set_num_threads(before)


def test_speed_passes_combine_by_their_ratios_and_merge_replaces_only_the_rows_timed() -> None:
    """`--passes`: one row per configuration, the geometric mean of the passes' ratios (each kept),
    not pooled steps, which a pass slow on both sides would tip; `--merge`: re-timed rows replace
    theirs (dated), the others stay, and rows of another CPU are refused."""
    from benchmarks.speed_ratios import combine_passes, merged

    key = {"model": "fvsbn", "batch": 128, "precision": "fp32", "threads": 2, "mode": "eager"}
    speeds = {"chainrule_images_per_s": 100.0, "reference_images_per_s": 100.0, "steps": 3}
    fast = {**key, **speeds, "ratio": 1.25, "times": ([1.0, 1.1, 0.9], [1.25, 1.4, 1.1])}
    busy = {**key, **speeds, "ratio": 1.25, "times": ([4.0, 4.4, 3.6], [5.0, 5.5, 4.5])}
    (row,) = combine_passes([[fast], [busy]])
    assert row["pass_ratios"] == [1.25, 1.25] and row["steps"] == 6 and "times" not in row
    assert row["ratio"] == pytest.approx(1.25)  # pooled medians would give 1.4 / 1.1
    assert row["ratio_95"][0] <= 1.25 <= row["ratio_95"][1]
    assert "pass_ratios" not in combine_passes([[fast]])[0]
    assert "pass_parallel_speedups" not in row
    states = [{**fast, "parallel_speedup": 1.9}], [{**busy, "parallel_speedup": 1.5}]
    assert combine_passes(list(states))[0]["pass_parallel_speedups"] == [1.9, 1.5]

    other = {**key, "threads": 1, "ratio": 1.5}
    machine = {"cpu": "X", "date": "2026-12-06T15:00"}
    previous = {
        "machine": {"cpu": "X", "date": "2026-12-06T12:00"},
        "training": [other, {**key, "ratio": 0.8}],
    }
    previous["sampling"] = {"fvsbn": {"ratio": 20.0}}
    out = merged({"machine": machine, "training": [{**key, "ratio": 1.1}], "sampling": {}}, previous)
    assert [(r["threads"], r["ratio"], r["date"]) for r in out["training"]] == [
        (1, 1.5, "2026-12-06T12:00"),
        (2, 1.1, "2026-12-06T15:00"),
    ]
    assert out["sampling"] == previous["sampling"] and out["summary"].startswith("2 of 2 rows")
    with pytest.raises(SystemExit, match="measured on 'X', this run on 'Y'"):
        merged({"machine": {"cpu": "Y", "date": "d"}, "training": [], "sampling": {}}, previous)


def test_before_after_keeps_each_rows_best_round_with_its_peaks() -> None:
    """benchmarks.image_speed_before_after: per row, the round with the highest fraction of the
    matmul peak, and that round's peaks beside it (rounds differ in the VM's state)."""
    from benchmarks.image_speed_before_after import best_rounds

    def row(ips: float, fraction: float) -> dict:
        return {"images_per_s": ips, "fraction_of_matmul_peak": fraction, "fraction_of_conv_peak": 0.0}

    rounds = [
        {"peaks_gflops": {"matmul_bf16": 400.0}, "rows": {"a bf16": row(100, 0.30), "b bf16": row(50, 0.20)}},
        {"peaks_gflops": {"matmul_bf16": 300.0}, "rows": {"a bf16": row(90, 0.35), "b bf16": row(40, 0.10)}},
    ]
    best = best_rounds(rounds)
    assert best["a bf16"]["images_per_s"] == 90 and best["a bf16"]["peaks_gflops"] == {"matmul_bf16": 300.0}
    assert best["b bf16"]["images_per_s"] == 50 and best["b bf16"]["peaks_gflops"] == {"matmul_bf16": 400.0}


def test_time_to_quality_rerun_of_one_model_keeps_the_others_rows() -> None:
    """`--models gated-pixelcnn` replaces that row and keeps the earlier run's made and nade rows
    (dated by their file) when both were measured alike; otherwise the new run stands alone."""
    from benchmarks.time_to_quality import keeping_other_models

    alike = {"target_nll": 90.0, "quick": False, "threads": 2, "validation": "v", "machine": {"cpu": "c"}}
    names = ("made", "nade", "gated-pixelcnn")
    old = {**alike, "date": "d0", "models": [{"model": m, "n": 0} for m in names]}
    new = {**alike, "date": "d1", "models": [{"model": "gated-pixelcnn", "n": 1, "date": "d1"}]}
    merged = keeping_other_models(new, old)
    assert [(r["model"], r["n"], r["date"]) for r in merged["models"]] == [
        ("made", 0, "d0"),
        ("nade", 0, "d0"),
        ("gated-pixelcnn", 1, "d1"),
    ]
    assert keeping_other_models(new, {**old, "threads": 1}) == new
    assert keeping_other_models(new, {**old, "machine": {"cpu": "other"}}) == new
    assert keeping_other_models(new, None) == new


def test_deep_nade_eval_speed_quick_agrees_with_the_full_pass() -> None:
    """The running first-layer sum and a full pass per position give the same terms."""
    from benchmarks.deep_nade_eval_speed import run

    result = run(quick=True, threads=1)
    assert result["max_abs_term_difference"] < 1e-4
    assert result["speedup"] > 0 and set(result["ms_per_image_per_ordering"]) == {"running_sum", "full_pass"}


def test_deep_nade_ensemble_curve_ends_at_the_models_own_ensemble() -> None:
    """Mixtures built from per-ordering log-likelihoods: m = 1 is the first ordering, m = all the
    model's own log_prob."""
    from benchmarks.deep_nade_ensemble_curve import curve, per_ordering_log_probs
    from chainrule.models import DeepNADE

    model = DeepNADE(6, hidden=8, layers=2, num_orderings=6, seed=0).eval()
    x = (torch.rand(30, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    per = per_ordering_log_probs(model, x, batch_size=7)
    rows = curve(per)
    assert [r["orderings"] for r in rows] == [1, 2, 4, 6]
    with torch.no_grad():
        assert rows[0]["nll_nats"] == pytest.approx(
            -model.log_prob(x, num_orderings=1).mean().item(), abs=1e-5
        )
        assert rows[-1]["nll_nats"] == pytest.approx(-model.log_prob(x).mean().item(), abs=1e-5)
