"""Generative classification from the CLI and the benchmark (issue 8): `evaluate_generative_classifier`
agrees with Bayes rule by hand, `chainrule classifier eval` tells a class-conditional model folder from
a CNN folder, and benchmarks/generative_classification.py writes its JSON and table. Tiny untrained
models on the 8x8 digits: the arithmetic, not the accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from chainrule.classifiers import log_loss
from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.models import GatedPixelCNN
from chainrule.persistence import save
from chainrule.tasks.classify import (
    check_fits_data,
    class_log_likelihoods,
    evaluate_generative_classifier,
    generative_classifier,
)


def tiny(num_classes: int = 3, shape=(3, 3)) -> GatedPixelCNN:
    torch.manual_seed(0)
    model = GatedPixelCNN(list(shape), channels=4, layers=1, output_channels=4, num_classes=num_classes)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.double().eval()


def binary(n: int, d: int = 9, seed: int = 0) -> torch.Tensor:
    probs = torch.full((n, d), 0.5, dtype=torch.float64)
    return torch.bernoulli(probs, generator=torch.Generator().manual_seed(seed))


def test_evaluation_agrees_with_bayes_rule_by_hand():
    model, x = tiny(), binary(12)
    y = torch.tensor([0, 1, 2] * 4)
    train_labels = torch.tensor([0, 0, 0, 1, 2, 2])
    report = evaluate_generative_classifier(model, x, y, train_labels, batch_size=5, progress=False)
    with torch.no_grad():
        lik = torch.stack([model.log_prob(x, cond=torch.full((12,), c)) for c in range(3)], 1)
    prior = torch.tensor([3 / 6, 1 / 6, 2 / 6], dtype=torch.float64)
    joint = lik + prior.log()
    clf = generative_classifier(model, train_labels)
    assert report.examples == 12
    assert report.accuracy == pytest.approx(clf.score(x, y))
    assert report.accuracy == pytest.approx(float((joint.argmax(1) == y).double().mean()))
    assert report.log_loss == pytest.approx(log_loss(clf.predict_log_proba(x), y), abs=1e-10)
    true = lik.gather(1, y[:, None])[:, 0]
    assert report.nll_true_class_nats == pytest.approx(float(-true.mean()), abs=1e-10)
    assert report.nll_true_class_stderr == pytest.approx(float(true.std() / math.sqrt(12)), abs=1e-10)
    assert report.bits_per_dim == pytest.approx(float(-true.mean()) / 9 / math.log(2), abs=1e-12)
    assert report.marginal_nll_nats == pytest.approx(float(-torch.logsumexp(joint, 1).mean()), abs=1e-10)
    assert report.prior == pytest.approx(prior.tolist())
    uniform = evaluate_generative_classifier(model, x, y, progress=False)
    assert uniform.prior == pytest.approx([1 / 3] * 3)
    assert set(report.as_dict()) >= {"accuracy", "nll_true_class_nats", "marginal_nll_nats", "prior"}


def test_class_log_likelihoods_do_not_depend_on_the_batch_size():
    model, x = tiny(), binary(7)
    a = class_log_likelihoods(model, x, batch_size=7, progress=False)
    b = class_log_likelihoods(model, x, batch_size=2, progress=False)
    assert a.shape == (7, 3) and a.dtype == torch.float64 and torch.allclose(a, b, atol=1e-12)


def test_bad_input_is_a_clear_error():
    model, x = tiny(), binary(4)
    plain = GatedPixelCNN([3, 3], channels=4, layers=1, output_channels=4)
    with pytest.raises(ChainruleError, match="not class-conditional"):
        evaluate_generative_classifier(plain, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ChainruleError, match="unknown label 3"):
        evaluate_generative_classifier(model, x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ChainruleError, match="one label per example"):
        evaluate_generative_classifier(model, x, torch.tensor([0, 1]))
    with pytest.raises(ChainruleError, match="batch size"):
        class_log_likelihoods(model, x, batch_size=0)
    digits = load_dataset("digits")
    with pytest.raises(ChainruleError, match=r"models \(3, 3\) images"):
        check_fits_data(model, digits, "here")
    with pytest.raises(ChainruleError, match="has 10 classes; here models 3"):
        check_fits_data(tiny(3, (8, 8)), digits, "here")
    with pytest.raises(ChainruleError, match="here holds a density model .* not class-conditional"):
        check_fits_data(plain, digits, "here")
    table = SimpleNamespace(name="wine", num_values=0, image_shape=None)  # a table: declares no images
    with pytest.raises(ChainruleError, match="dataset 'wine' has no images"):
        check_fits_data(tiny(3, (8, 8)), table, "here")


# -- the command line ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("genclf")
    save(tiny(10, (8, 8)).float(), root / "model")
    save(GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4), root / "plain")
    save(tiny(10, (28, 28)).float(), root / "model28")
    from chainrule.classifiers import CNNClassifier, save_classifier

    save_classifier(CNNClassifier([8, 8], 2, 10, channels=[4], hidden=8), root / "clf")
    return root


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_classifier_eval_of_a_class_conditional_model(saved, capsys):
    rc, out, err = run(["classifier", "eval", saved / "model", "--data", "digits", "-n", 40], capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert result["kind"] == "generative" and result["examples"] == 40 and result["model"] == "gated-pixelcnn"
    from chainrule.persistence import load

    data = load_dataset("digits")
    report = evaluate_generative_classifier(
        load(saved / "model"), data.test[:40], data.labels["test"][:40], data.labels["train"], progress=False
    )
    assert result["accuracy"] == pytest.approx(report.accuracy)
    assert result["nll_true_class_nats"] == pytest.approx(report.nll_true_class_nats)
    counts = torch.bincount(data.labels["train"], minlength=10).double()
    assert result["prior"] == pytest.approx((counts / counts.sum()).tolist())
    assert "1257 training images" in result["prior_from"]


def test_cli_classifier_eval_of_a_cnn_folder_still_works_and_takes_n(saved, capsys):
    rc, out, err = run(["classifier", "eval", saved / "clf", "--data", "digits", "-n", 30], capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert result["kind"] == "cnn" and result["examples"] == 30 and 0 <= result["accuracy"] <= 1


@pytest.mark.parametrize(
    "folder, extra, message",
    [
        ("plain", [], r"plain holds a density model \(gated-pixelcnn\) that is not class-conditional"),
        ("model28", [], r"models \(28, 28\) images of 2 levels; dataset 'digits' has \(8, 8\)"),
        ("model", ["-n", "0"], "-n must be at least 1"),
        ("model", ["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_cli_classifier_eval_bad_input_is_a_clear_error(saved, capsys, folder, extra, message):
    rc, out, err = run(["classifier", "eval", saved / folder, "--data", "digits", *extra], capsys)
    assert rc == 2 and out == "" and "Traceback" not in err
    assert __import__("re").search(message, err), err


# -- the benchmark ------------------------------------------------------------------------------------------
def test_matched_cnn_is_close_to_the_target(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # the repository root
    from benchmarks.generative_classification import cnn_parameters, matched_cnn

    arch = matched_cnn((28, 28), 2, 10, 123_521)  # recipes/gated-pixelcnn-mnist-classes.yaml's size
    assert arch["channels"] == [32, 64] and abs(arch["num_parameters"] / 123_521 - 1) < 0.1
    assert arch["num_parameters"] == cnn_parameters((28, 28), 2, 10, arch["channels"], arch["hidden"])
    small = matched_cnn((8, 8), 2, 10, 1000)
    assert 0.5 < small["num_parameters"] / 1000 < 2


def test_benchmark_script_writes_its_json_and_table(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    from benchmarks.generative_classification import format_table
    from benchmarks.generative_classification import main as benchmark

    cnn = tmp_path / "cnn"
    argv = ["--model", saved / "model", "--data", "digits", "-n", 25, "--cnn", cnn, "--epochs", 1,
            "--results", tmp_path, "--name", "gc"]  # fmt: skip
    payload = benchmark([str(a) for a in argv])
    saved_json = json.loads((tmp_path / "gc.json").read_text())
    assert "machine" in saved_json and "date" in saved_json["machine"]
    g, d = saved_json["generative"], saved_json["discriminative"]
    assert saved_json["n"] == 25 and g["examples"] == 25 and d["trained_now"] is True
    assert g["num_parameters"] == sum(p.numel() for p in tiny(10, (8, 8)).parameters())
    assert 0.5 < saved_json["parameter_ratio"] < 2
    assert 0 <= g["accuracy"] <= 1 and 0 <= d["accuracy"] <= 1 and d["log_loss"] > 0
    assert (cnn / "config.json").is_file()
    table = format_table(saved_json)
    assert "| generative: gated-pixelcnn + Bayes rule |" in table and table in capsys.readouterr().out
    again = benchmark([str(a) for a in argv])  # the trained CNN is reused, not retrained
    assert again["discriminative"]["trained_now"] is False
    assert again["discriminative"]["accuracy"] == payload["discriminative"]["accuracy"]
