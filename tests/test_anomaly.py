"""OOD detection: metrics agree with scikit-learn (ties included), scores have the right signs and
shapes, the likelihood ratio against the model itself is 0, input complexity uses the compressor,
the background-model perturbation, `chainrule score` end to end and its clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from chainrule.data import load_dataset
from chainrule.data.base import Dataset
from chainrule.data.perturb import perturb
from chainrule.errors import ChainruleError
from chainrule.models import FVSBN, NADE
from chainrule.persistence import save
from chainrule.tasks.anomaly import (
    batch_typicality,
    check_data_fits,
    check_same_kind,
    compare_ood,
    input_complexity_score,
    likelihood_ratio_score,
    log_likelihood,
    score_inputs,
    typicality_threshold,
)
from chainrule.tasks.compression import COMPRESSORS, SINGLE_COMPRESSORS, code_lengths
from chainrule.tasks.ood_metrics import aupr, auroc, fpr_at_tpr, ood_metrics
from chainrule.training import TrainConfig, fit

sklearn_metrics = pytest.importorskip("sklearn.metrics")


# --- metrics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_metrics_agree_with_sklearn_also_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    # odd seeds: few distinct values, so many ties across the two classes
    s = rng.integers(0, int(rng.integers(1, 6)), n).astype(float) if seed % 2 else rng.normal(size=n)
    assert auroc(s, y) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
    assert aupr(s, y) == pytest.approx(sklearn_metrics.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    assert fpr_at_tpr(s, y) == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)


def test_metrics_of_perfect_reversed_and_tied_scores():
    m = ood_metrics(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([3.0, 4.0]))
    assert (m.auroc, m.aupr, m.fpr_at_95_tpr) == (1.0, 1.0, 0.0)
    assert ood_metrics([3.0, 4.0], [0.0, 1.0]).auroc == 0.0
    tied = ood_metrics([1.0] * 4, [1.0] * 6)
    assert tied.auroc == 0.5 and tied.aupr == pytest.approx(0.6) and tied.fpr_at_95_tpr == 1.0


def test_metrics_refuse_bad_input():
    with pytest.raises(ChainruleError, match="non-finite"):
        ood_metrics([0.0, float("nan")], [1.0])
    with pytest.raises(ChainruleError, match="both in-distribution and OOD"):
        auroc([0.0, 1.0], [1, 1])
    with pytest.raises(ChainruleError, match="labels must be 0"):
        auroc([0.0, 1.0], [0, 2])
    with pytest.raises(ChainruleError, match="tpr_level"):
        fpr_at_tpr([0.0, 1.0], [0, 1], 1.5)


# --- scores ----------------------------------------------------------------------------------


def independent_model(x: torch.Tensor, shape=(8, 8)) -> FVSBN:
    """An FVSBN whose conditionals ignore earlier pixels: the independent Bernoulli MLE of x."""
    model = FVSBN(x.shape[1], image_shape=list(shape))
    p = x.double().mean(0).clamp(0.02, 0.98)
    with torch.no_grad():
        model.linear.bias.copy_(torch.log(p / (1 - p)))
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_scores_have_the_right_shapes_and_signs(digits):
    model = independent_model(digits.train)
    noise = torch.bernoulli(torch.full((30, 64), 0.5), generator=torch.Generator().manual_seed(0))
    x = digits.test[:40]
    ref = float(-log_likelihood(model, digits.val).mean())
    scores = score_inputs(model, x, reference_nll_mean=ref, compressor="zlib")
    assert list(scores) == ["nll", "bits_per_dim", "input_complexity", "typicality"]  # no background
    for v in scores.values():
        assert v.shape == (40,) and v.dtype == torch.float64
    log_p = model.log_prob(x).double()
    assert torch.allclose(scores["nll"], -log_p)
    assert torch.allclose(scores["bits_per_dim"], -log_p / math.log(2) / 64)
    assert torch.allclose(scores["typicality"], (-log_p - ref).abs()) and (scores["typicality"] >= 0).all()
    # higher = more anomalous: coin-flip images score above the digits the model was fitted to
    result = compare_ood(model, x, noise, digits.val, compressor="zlib")
    assert result.metrics["nll"].auroc > 0.95 and result.metrics["typicality"].auroc > 0.95
    assert result.reference_nll_mean == pytest.approx(ref)


def test_likelihood_ratio_against_the_model_itself_is_zero(digits):
    torch.manual_seed(0)
    model = NADE(64, hidden=8, image_shape=[8, 8]).double().eval()
    same = NADE(64, hidden=8, image_shape=[8, 8]).double().eval()
    same.load_state_dict(model.state_dict())
    x = digits.test[:20].double()
    scores = score_inputs(model, x, reference_nll_mean=0.0, background=same, compressor=None)
    assert torch.equal(scores["likelihood_ratio"], torch.zeros(20, dtype=torch.float64))
    assert "input_complexity" not in scores  # compressor=None skips it
    lp, lb = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])
    assert likelihood_ratio_score(lp, lb).tolist() == [-2.0, 5.0]  # the model explains x2 worse


def test_input_complexity_uses_the_compressor(digits):
    model = independent_model(digits.train)
    x = digits.test[:25]
    log_p = model.log_prob(x).double()
    for compressor in COMPRESSORS:
        scores = score_inputs(model, x, reference_nll_mean=0.0, compressor=compressor)
        bits = code_lengths(x, (8, 8), 2, compressor)
        assert torch.allclose(scores["input_complexity"], -log_p / math.log(2) - bits)
    best = code_lengths(x, (8, 8), 2, "best")
    each = torch.stack([code_lengths(x, (8, 8), 2, c) for c in SINGLE_COMPRESSORS])
    assert torch.allclose(best, each.min(0).values + 2)  # two bits name the chosen compressor
    assert not torch.equal(each[0], each[1])  # png and zlib differ: the choice matters
    assert input_complexity_score(torch.tensor([-math.log(2) * 100]), torch.tensor([30.0])).item() == 70.0


def test_code_lengths_reward_regular_images():
    flat = torch.zeros(4, 28 * 28)
    noise = torch.bernoulli(torch.full((4, 28 * 28), 0.5), generator=torch.Generator().manual_seed(0))
    levels = torch.randint(0, 256, (4, 28 * 28 * 3), generator=torch.Generator().manual_seed(1)).float()
    for c in SINGLE_COMPRESSORS:
        assert (code_lengths(flat, (28, 28), 2, c) < code_lengths(noise, (28, 28), 2, c)).all(), c
        assert (code_lengths(noise, (28, 28), 2, c) > 28 * 28 * 0.9).all(), c  # noise barely compresses
        assert (code_lengths(levels, (28, 28, 3), 256, c) > 28 * 28 * 3 * 8 * 0.9).all(), c
    with pytest.raises(ChainruleError, match="codes 0..1"):
        code_lengths(torch.full((1, 4), 2.0), (2, 2), 2)
    with pytest.raises(ChainruleError, match="unknown compressor"):
        code_lengths(flat, (28, 28), 2, "gzip")
    with pytest.raises(ChainruleError, match="image shape"):
        code_lengths(flat, (8, 8), 2)


def test_batch_typicality_and_its_threshold():
    g = torch.Generator().manual_seed(0)
    ref = 80 + 5 * torch.randn(2000, generator=g, dtype=torch.float64)
    too_likely = 70 + 5 * torch.randn(200, generator=g, dtype=torch.float64)  # lower NLL than typical
    stats = batch_typicality(too_likely, float(ref.mean()), 10, g)
    assert stats.shape == (20,)
    threshold = typicality_threshold(ref, 10, alpha=0.99, generator=g)
    assert 0 < threshold < 10 and (stats > threshold).all()
    assert (batch_typicality(ref, float(ref.mean()), 10, g) <= threshold).float().mean() > 0.95
    with pytest.raises(ChainruleError, match="at least M=10"):
        batch_typicality(ref[:5], 80.0, 10)
    with pytest.raises(ChainruleError, match="alpha"):
        typicality_threshold(ref, 10, alpha=1.0)


def test_data_and_background_checks_name_the_problem():
    model = FVSBN(64, image_shape=[8, 8])
    small = Dataset("tiny", torch.zeros(2, 16), torch.zeros(2, 16), torch.zeros(2, 16), 2, image_shape=(4, 4))
    with pytest.raises(ChainruleError, match="'tiny' has 4x4 images; the model was trained on 8x8 images"):
        check_data_fits(model, small, "tiny")
    eight_bit = Dataset("fashion-mnist", *(torch.zeros(2, 64),) * 3, 256, image_shape=(8, 8))
    with pytest.raises(ChainruleError, match="256-level values but the model is binary.*binarized-fashion"):
        check_data_fits(model, eight_bit, "fashion-mnist")
    with pytest.raises(ChainruleError, match="background model has 4x4 images; the model has 8x8"):
        check_same_kind(model, FVSBN(16, image_shape=[4, 4]))
    with pytest.raises(ChainruleError, match="background model is 3-level"):
        check_same_kind(model, FVSBN(64, image_shape=[8, 8], num_values=3))


# --- perturbation (background models) --------------------------------------------------------


@pytest.mark.parametrize("num_values", [2, 256])
def test_perturbation_replaces_the_expected_share_with_uniform_values(num_values):
    x = torch.zeros(400, 500)
    index = torch.arange(1000, 1400)
    out = perturb(x, index, 0.3, num_values, seed=0, epoch=0)
    changed = (out != x).float().mean().item()
    assert changed == pytest.approx(0.3 * (1 - 1 / num_values), abs=0.01)  # a replacement may equal x
    assert out.min() >= 0 and out.max() <= num_values - 1 and torch.equal(out, out.round())
    if num_values == 256:
        new = out[out != 0]
        assert new.mean().item() == pytest.approx(128.5, abs=3)  # uniform over 1..255
    assert torch.equal(perturb(x, index, 0.0, num_values, 0, 0), x)


def test_perturbation_is_reproducible_and_fresh_each_epoch():
    x = torch.bernoulli(torch.full((64, 30), 0.5), generator=torch.Generator().manual_seed(0))
    index = torch.arange(64) * 7
    a = perturb(x, index, 0.5, 2, seed=3, epoch=1)
    assert torch.equal(a, perturb(x, index, 0.5, 2, seed=3, epoch=1))  # same after a resume
    assert not torch.equal(a, perturb(x, index, 0.5, 2, seed=3, epoch=2))
    assert not torch.equal(a, perturb(x, index, 0.5, 2, seed=4, epoch=1))
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(perturb(x[perm], index[perm], 0.5, 2, 3, 1), a[perm])  # per example, not per batch


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.1", True, None])
def test_perturb_rate_is_validated(bad):
    with pytest.raises(ChainruleError, match=r"train.perturb_rate must be a number in \[0, 1\)"):
        TrainConfig(perturb_rate=bad).check()
    with pytest.raises(ChainruleError, match=r"\[0, 1\)"):
        perturb(torch.zeros(1, 2), torch.arange(1), bad, 2, 0, 0)


def test_training_perturbs_each_batch_after_binarization(tmp_path, monkeypatch):
    import chainrule.training.objectives as objectives

    seen = []

    def recording(x, index, rate, num_values, seed, epoch):
        out = perturb(x, index, rate, num_values, seed, epoch)
        seen.append((x.clone(), out, rate, num_values, seed, epoch))
        return out

    monkeypatch.setattr(objectives, "perturb", recording)
    probs = torch.full((64, 16), 0.3)
    data = Dataset("p", probs, torch.zeros(16, 16), torch.zeros(16, 16), 2, dynamic_binarization=True)
    cfg = TrainConfig(batch_size=16, max_epochs=2, perturb_rate=0.4, seed=5, progress=False)
    fit(FVSBN(16), data, cfg, tmp_path / "run")
    assert len(seen) == 8 and {s[5] for s in seen} == {0, 1}
    for x, _, rate, num_values, seed, _ in seen:
        assert set(x.unique().tolist()) <= {0.0, 1.0}  # binarized first, then perturbed
        assert (rate, num_values, seed) == (0.4, 2, 5)
    assert any(not torch.equal(x, out) for x, out, *_ in seen)
    continuous = Dataset("c", torch.randn(64, 2), torch.randn(8, 2), torch.randn(8, 2), 0)
    with pytest.raises(ChainruleError, match="perturb_rate=0.4 needs array data of discrete values"):
        fit(FVSBN(2), continuous, cfg, tmp_path / "run2")


# --- command line ----------------------------------------------------------------------------


def run_cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    """A model of the 8x8 digits, coin-flip images as a CSV dataset, a 4x4 model."""
    root = tmp_path_factory.mktemp("score")
    save(independent_model(digits.train), root / "m")
    rows = torch.bernoulli(torch.full((300, 64), 0.5), generator=torch.Generator().manual_seed(0)).long()
    lines = [",".join(f"p{i}" for i in range(64))] + [",".join(map(str, r)) for r in rows.tolist()]
    (root / "noise.csv").write_text("\n".join(lines) + "\n")
    save(FVSBN(16, image_shape=[4, 4]), root / "small")
    return root


def test_cli_score_prints_the_table_writes_json_and_histograms(saved, tmp_path):
    out = tmp_path / "hist.png"
    rc, stdout, err = run_cli(
        "score", saved / "m", "--data", "digits", "--ood-data", f"csv:{saved / 'noise.csv'}",
        "--background", saved / "m", "-n", "25", "--out", out,
    )  # fmt: skip
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["n_in"] == 25 and result["n_ood"] == 25 and result["typicality_reference"]["n"] == 25
    scores = result["scores"]
    assert list(scores) == ["nll", "bits_per_dim", "likelihood_ratio", "input_complexity", "typicality"]
    assert scores["nll"]["auroc"] > 0.95 and scores["nll"]["mean_ood"] > scores["nll"]["mean_in"]
    assert scores["likelihood_ratio"]["auroc"] == 0.5  # a background equal to the model: all scores 0
    assert "AUROC" in err and "FPR@95" in err and "input_complexity" in err
    assert out.stat().st_size > 5000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ood-data", "binarized-mnist"], "has 28x28 images; the model was trained on 8x8 images"),
        (["--ood-data", "no-such-data"], "unknown dataset 'no-such-data'"),
        (["--ood-data", "digits-17"], "holds 17-level values but the model is binary"),
        (["--ood-data", "digits", "--background", "{small}"], "background model has 4x4 images"),
        (["--ood-data", "digits", "-n", "1"], "-n must be at least 2"),
        (["--ood-data", "digits", "--k", "5"], "--k applies to latent-variable models"),
    ],
)
def test_cli_score_bad_input_is_one_clear_line(saved, args, message, capsys):
    from chainrule.cli import main

    args = [a.replace("{small}", str(saved / "small")) for a in args]
    rc = main(["score", str(saved / "m"), "--data", "digits", *args])  # in-process: no interpreter start
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1, err


def test_cli_score_error_from_a_fresh_process_has_no_traceback(saved):
    rc, _, err = run_cli("score", saved / "m", "--data", "digits", "--ood-data", "binarized-mnist")
    assert rc == 2 and "has 28x28 images; the model was trained on 8x8 images" in err
    assert "Traceback" not in err


def test_background_sweep_scores_validation_images_and_merges_its_json(saved, tmp_path, monkeypatch, capsys):
    import benchmarks.common
    from benchmarks import ood_background_sweep as sweep

    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path)
    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    save(FVSBN(64, image_shape=[8, 8]), tmp_path / "untrained")
    noise = f"csv:{saved / 'noise.csv'}"
    args = ["--model", str(saved / "m"), "--data", "digits", "--ood", noise, "-n", "20"]
    sweep.main([*args, "--backgrounds", str(saved / "m"), str(tmp_path / "untrained")])
    runs = json.loads((tmp_path / "ood_background_sweep.json").read_text())["runs"]
    assert [r["background"] for r in runs] == ["m", "untrained"]
    assert all(r["split"] == "val" and r["n_in"] == 20 and r["n_ood"] == 20 for r in runs)
    assert runs[0]["likelihood_ratio"]["auroc"] == 0.5  # the model against itself: every ratio is 0
    assert runs[0]["nll"]["auroc"] > 0.95  # coin-flip images are far less likely than digits
    assert "best background on validation: untrained" in capsys.readouterr().out
    sweep.main([*args, "--backgrounds", str(saved / "m")])  # a rerun replaces its entry, keeps the other
    runs = json.loads((tmp_path / "ood_background_sweep.json").read_text())["runs"]
    assert [r["background"] for r in runs] == ["untrained", "m"]
    with pytest.raises(ChainruleError, match="-n must be at least 1"):
        sweep.main([*args, "-n", "0", "--backgrounds", str(saved / "m")])


def test_ood_results_keep_one_entry_per_background_model(tmp_path):
    """benchmarks/ood.py merges by model, data, OOD data and background: a run with another
    background adds its entry, a rerun with the same one replaces it, and entries written before
    the key had a background (none) still match a run without one."""
    import json

    from benchmarks.ood import merge

    path = tmp_path / "ood.json"
    base = {"model": "m", "data": "d", "ood_data": "o"}
    earlier = [{**base, "auroc": 0.5}, {**base, "background_dir": "bg1", "auroc": 0.9}]
    path.write_text(json.dumps({"runs": earlier}))
    got = merge([{**base, "background_dir": "bg2", "auroc": 0.99}], path)
    assert [e.get("background_dir") for e in got] == [None, "bg1", "bg2"]
    got = merge([{**base, "background_dir": "bg1", "auroc": 0.95}, {**base, "background_dir": None}], path)
    assert [(e.get("background_dir"), e.get("auroc")) for e in got] == [("bg1", 0.95), (None, None)]
