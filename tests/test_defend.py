"""PixelDefend: FGSM/PGD attacks, likelihood-rank p-values, purification by greedy decoding inside an
ε-ball, the CNN classifier's files, the generative-classifier wrapper, and `chainrule defend` /
`chainrule classifier` with their errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from chainrule.classifiers import ClassifierTrainConfig, CNNClassifier, load_classifier, save_classifier
from chainrule.cli import main
from chainrule.errors import ChainruleError
from chainrule.models import GatedPixelCNN, PixelCNN
from chainrule.persistence import save
from chainrule.tasks.attacks import epsilon_levels, fgsm, parse_epsilon, pgd
from chainrule.tasks.classify import class_densities, generative_classifier
from chainrule.tasks.defend import defend_report, format_defend_table
from chainrule.tasks.likelihood_rank import detection_auroc, log_likelihoods, rank_p_values
from chainrule.tasks.purify import purify


def randomized(model, std: float = 0.4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model.eval()


def small_classifier(shape=(6, 6), num_values: int = 256) -> CNNClassifier:
    return CNNClassifier(list(shape), num_values, 3, channels=[4], hidden=8, dropout=0.0)


def levels(n: int, d: int, lo: int = 0, hi: int = 256, seed: int = 0) -> torch.Tensor:
    return torch.randint(lo, hi, (n, d), generator=torch.Generator().manual_seed(seed)).float()


def input_gradient_sign(clf: CNNClassifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    u = (x / 255).requires_grad_(True)
    F.cross_entropy(clf.net(u), y, reduction="sum").backward()
    return u.grad.sign()


# -- attacks ------------------------------------------------------------------------------------------
def test_fgsm_moves_each_pixel_by_exactly_eps_in_the_sign_of_the_gradient():
    clf = small_classifier()
    x = levels(8, 36, 20, 236)  # at least 20 levels from either end: nothing is clipped
    x[0, :4] = torch.tensor([0.0, 255.0, 3.0, 250.0])  # these may be clipped
    y = torch.arange(8) % 3
    sign = input_gradient_sign(clf, x, y)
    assert (sign != 0).float().mean() > 0.9
    free = torch.ones_like(x, dtype=torch.bool)
    free[0, :4] = False

    raw = fgsm(clf, x, y, 0.05, round_to_levels=False)  # not a whole number of levels
    assert torch.allclose(((raw - x) / 255)[free], (0.05 * sign)[free], atol=1e-6)
    assert torch.allclose(raw, (x + 0.05 * 255 * sign).clamp(0, 255), atol=1e-4)  # clipped where needed

    rounded = fgsm(clf, x, y, 8 / 255)
    assert torch.equal((rounded - x)[free], (8 * sign)[free])
    assert torch.equal(rounded, (x + 8 * sign).clamp(0, 255))
    assert torch.equal(fgsm(clf, x, y, 0.0), x)


def test_rounded_attacks_stay_within_whole_levels_of_the_eps_ball():
    clf = small_classifier()
    x, y = levels(6, 36), torch.arange(6) % 3
    assert epsilon_levels(0.03, 256) == 7 and epsilon_levels(8 / 255, 256) == 8
    out = fgsm(clf, x, y, 0.03)  # 7.65 levels: rounding may not step outside the ball
    assert (out - x).abs().max() <= 7 and torch.equal(out, out.round())


def test_pgd_stays_inside_the_eps_ball_and_the_valid_range_and_raises_the_loss():
    clf = small_classifier()
    x = levels(16, 36)
    y = clf.predict(x)  # attack the classifier's own labels: the clean loss is small
    g = torch.Generator().manual_seed(0)
    for eps in (8 / 255, 0.03, 16 / 255):
        adv = pgd(clf, x, y, eps, steps=5, generator=g)
        assert (adv - x).abs().max() <= epsilon_levels(eps, 256)
        assert adv.min() >= 0 and adv.max() <= 255 and torch.equal(adv, adv.round())
        raw = pgd(clf, x, y, eps, steps=5, generator=g, round_to_levels=False)
        assert ((raw - x).abs() <= eps * 255 + 1e-4).all() and raw.min() >= 0 and raw.max() <= 255

    def loss(images):
        return F.cross_entropy(clf.logits(images), y).item()

    strong = pgd(clf, x, y, 16 / 255, steps=10, generator=g, round_to_levels=False)
    assert loss(strong) > loss(x) + 0.01


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan")])
def test_eps_outside_zero_one_is_a_clear_error(bad):
    clf = small_classifier()
    x, y = levels(2, 36), torch.tensor([0, 1])
    with pytest.raises(ChainruleError, match=r"outside \[0, 1\]"):
        fgsm(clf, x, y, bad)
    with pytest.raises(ChainruleError, match=r"outside \[0, 1\]"):
        pgd(clf, x, y, bad)
    with pytest.raises(ChainruleError, match=r"outside \[0, 1\]"):
        purify(GatedPixelCNN([2, 2], num_values=256, channels=4, layers=1, output_channels=4), x[:, :4], bad)


def test_epsilon_fractions_parse():
    assert parse_epsilon("8/255") == pytest.approx(8 / 255)
    assert parse_epsilon(" 0.5 ") == 0.5 and parse_epsilon("0") == 0.0
    for bad, msg in [("1/0", "fraction"), ("eight", "fraction"), ("300/255", r"outside \[0, 1\]")]:
        with pytest.raises(ChainruleError, match=msg):
            parse_epsilon(bad, "--eps")


def test_attacks_refuse_images_outside_the_classifiers_levels():
    clf = small_classifier()
    with pytest.raises(ChainruleError, match=r"levels in \[0, 255\]"):
        fgsm(clf, torch.full((1, 36), 300.0), torch.tensor([0]), 0.1)
    with pytest.raises(ChainruleError, match=r"35 values per image; this classifier takes 6x6 images"):
        fgsm(clf, torch.zeros(1, 35), torch.tensor([0]), 0.1)


# -- detection by likelihood rank --------------------------------------------------------------------------
def test_p_values_are_computed_as_defined():
    reference = torch.tensor([1.0, 2.0, 3.0])
    p = rank_p_values(torch.tensor([0.0, 2.0, 5.0, 1.5]), reference)
    assert p.tolist() == pytest.approx([1 / 4, 3 / 4, 4 / 4, 2 / 4])  # (1 + #{ref <= value}) / (N + 1)
    assert detection_auroc(torch.tensor([0.5, 0.9]), torch.tensor([0.1, 0.5])) == pytest.approx(
        (1 + 1 + 0.5 + 1) / 4  # pairs (clean, adv): (0.5,0.1) (0.9,0.1) (0.5,0.5 tie) (0.9,0.5)
    )
    assert detection_auroc(torch.tensor([0.2]), torch.tensor([0.9])) == 0.0
    with pytest.raises(ChainruleError, match="non-empty"):
        rank_p_values(torch.tensor([1.0]), torch.tensor([]))


def test_p_values_of_in_distribution_inputs_are_uniform_ish():
    """Exact samples of a model are in-distribution for it: their likelihood ranks among other
    samples give p-values close to uniform, and detecting one set against the other is chance."""
    torch.manual_seed(0)
    model = GatedPixelCNN([3, 3], num_values=256, head="logistic", components=2, channels=8, layers=2)
    model = randomized(model, std=0.1)  # broad conditionals: (almost) no two samples tie in likelihood
    x = model.sample(1200, generator=torch.Generator().manual_seed(1))
    ll = log_likelihoods(model, x, batch_size=500)
    reference, test = ll[:600], ll[600:]
    p = torch.sort(rank_p_values(test, reference)).values
    ecdf = torch.arange(1, len(p) + 1, dtype=torch.float64) / len(p)
    assert (ecdf - p).abs().max() < 0.094  # two-sample Kolmogorov-Smirnov bound, 600 vs 600, alpha 0.01
    assert abs(float(p.mean()) - 0.5) < 0.04
    other = rank_p_values(ll[:300], ll[300:])
    assert abs(detection_auroc(other, rank_p_values(test[:300], ll[300:])) - 0.5) < 0.08


# -- purification -----------------------------------------------------------------------------------------
def brute_force_greedy(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """Reference: for each dimension in order, try every allowed value (x_d - k .. x_d + k within
    the levels) with the prefix fixed, scoring it by a full pass's chain-rule term
    log p(x_d | x_<d), and keep the best (ties: the lowest value)."""
    out = torch.zeros_like(x)
    for d in range(x.shape[1]):
        best = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
        for offset in range(-k, k + 1):
            value = x[:, d] + offset
            ok = (value >= 0) & (value < model.num_values)
            canvas = out.clone()
            canvas[:, d] = value.clamp(0, model.num_values - 1)
            with torch.no_grad():
                term = model.log_prob_terms(canvas)[:, d]
            better = ok & (term > best)
            best = torch.where(better, term, best)
            out[:, d] = torch.where(better, value, out[:, d])
    return out


@pytest.mark.parametrize(
    "kind", ["gated-logistic", "gated-categorical", "pixelcnn-logistic", "gated-colour", "gated-binary"]
)
def test_purification_matches_a_brute_force_greedy_reference_on_2x2_images(kind):
    torch.manual_seed(0)
    levels_, shape, head = 256, [2, 2], "logistic"
    if kind == "gated-categorical":
        levels_, head = 16, "categorical"
    if kind == "gated-colour":
        shape = [2, 2, 3]
    if kind == "gated-binary":
        levels_, head = 2, "auto"
    cls = PixelCNN if kind.startswith("pixelcnn") else GatedPixelCNN
    model = cls(shape, num_values=levels_, head=head, components=2, channels=6, output_channels=6)
    model = randomized(model.double(), std=0.5)
    x = levels(5, model.dim, 0, levels_, seed=3).double()
    eps = {256: 16 / 255, 16: 3 / 15, 2: 1.0}[levels_]
    k = epsilon_levels(eps, levels_)
    expected = brute_force_greedy(model, x, k)
    for method in ("fast", "generic"):
        out = purify(model, x, eps, batch_size=2, method=method, progress=False)
        assert (out - x).abs().max() <= k  # every sub-pixel stays within eps_def
        assert torch.equal(out, expected), method
    assert not torch.equal(expected, x)  # purification did move some sub-pixels


def test_purification_with_eps_zero_changes_nothing():
    model = randomized(GatedPixelCNN([3, 3], num_values=256, head="logistic", channels=6, layers=2))
    x = levels(3, 9)
    assert torch.equal(purify(model, x, 0.0, progress=False), x)


def test_purification_refuses_models_that_cannot_purify():
    from chainrule.models import GaussianMixtureModel

    with pytest.raises(ChainruleError, match="autoregressive"):
        purify(GaussianMixtureModel(4, 2), torch.zeros(1, 4), 0.1)
    conditional = GatedPixelCNN(
        [2, 2], num_values=256, channels=4, layers=1, output_channels=4, num_classes=3
    )
    with pytest.raises(ChainruleError, match="class-conditional"):
        purify(conditional, torch.zeros(1, 4), 0.1)
    model = GatedPixelCNN([2, 2], num_values=256, channels=4, layers=1, output_channels=4)
    with pytest.raises(ChainruleError, match="integers in"):
        purify(model, torch.full((1, 4), 0.5), 0.1)


# -- the CNN classifier ---------------------------------------------------------------------------------
def test_classifier_save_load_round_trip(tmp_path):
    clf = CNNClassifier([6, 6], 256, 3, channels=[4, 8], hidden=8, seed=3)
    save_classifier(clf, tmp_path / "clf", extra={"training": {"note": "untrained"}})
    back = load_classifier(tmp_path / "clf")
    x = levels(5, 36)
    assert isinstance(back, CNNClassifier) and back.config() == clf.config()
    assert torch.equal(back.predict_log_proba(x), clf.predict_log_proba(x))
    assert back.training_info == {"note": "untrained"}
    assert not list(tmp_path.glob("clf/*.pt")) and not list(tmp_path.glob("clf/*.pkl"))
    other = CNNClassifier([6, 6], 256, 3, channels=[4, 8], hidden=8, seed=4)
    assert not torch.equal(other.predict_log_proba(x), clf.predict_log_proba(x))  # the seed matters


def test_classifier_files_are_checked(tmp_path):
    clf = small_classifier()
    save_classifier(clf, tmp_path / "clf")
    weights = tmp_path / "clf" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ChainruleError, match="sha256"):
        load_classifier(tmp_path / "clf")
    save(GatedPixelCNN([2, 2], channels=4, layers=1, output_channels=4), tmp_path / "density")
    with pytest.raises(ChainruleError, match="density model"):
        load_classifier(tmp_path / "density")
    with pytest.raises(ChainruleError, match="does not exist"):
        load_classifier(tmp_path / "none")


def test_classifier_training_on_digits_learns_and_is_seeded(tmp_path):
    from chainrule.data import load_dataset

    data = load_dataset("digits")
    config = ClassifierTrainConfig(batch_size=64, max_epochs=6, lr=3e-3, patience=6, progress=False)

    def train():
        clf = CNNClassifier([8, 8], 2, 10, channels=[16], hidden=32, dropout=0.0)
        result = clf.fit(data.train, data.labels["train"], data.val, data.labels["val"], config, tmp_path)
        return clf, result

    clf, result = train()
    assert result.best_val_acc > 0.8 and len(result.history) == result.epochs
    assert clf.score(data.test, data.labels["test"]) > 0.8
    again, _ = train()
    assert torch.equal(again.predict_log_proba(data.test), clf.predict_log_proba(data.test))
    with pytest.raises(ChainruleError, match="lr must be"):
        clf.fit(data.train, data.labels["train"], data.val, data.labels["val"], ClassifierTrainConfig(lr=-1))


# -- the report ------------------------------------------------------------------------------------------
def test_defend_report_rows_and_table():
    torch.manual_seed(0)
    model = randomized(GatedPixelCNN([4, 4], num_values=256, head="logistic", channels=6, layers=2), std=0.3)
    clf = CNNClassifier([4, 4], 256, 3, channels=[4], hidden=8)
    x, y = levels(6, 16, seed=1), torch.arange(6) % 3
    result = defend_report(
        model, clf, x, y, levels(20, 16, seed=2), eps=[8 / 255], defend_eps=16 / 255, show=2, progress=False
    )
    rows = result.table["rows"]
    assert [(r["input"], r["eps_levels"]) for r in rows] == [("clean", 0), ("fgsm", 8), ("pgd", 8)]
    assert rows[0]["accuracy"] == pytest.approx(float((clf.predict(x) == y).double().mean()))
    assert all(0 <= r["detection_auroc"] <= 1 for r in rows[1:])
    assert list(result.images) == [
        "clean",
        "clean, purified",
        "fgsm 8/255",
        "fgsm 8/255, purified",
        "pgd 8/255",
        "pgd 8/255, purified",
    ]
    assert all(v.shape == (2, 16) for v in result.images.values())
    assert "fgsm" in format_defend_table(result.table)
    json.dumps(result.table)
    with pytest.raises(ChainruleError, match="shape"):
        defend_report(model, small_classifier(), x, y, x)


# -- generative classification ------------------------------------------------------------------------------
def test_generative_classifier_wrapper_agrees_with_bayes_rule_by_hand():
    torch.manual_seed(0)
    model = randomized(GatedPixelCNN([3, 3], channels=6, layers=2, output_channels=6, num_classes=3).double())
    train_labels = torch.tensor([0, 0, 1, 2, 2, 2])
    clf = generative_classifier(model, train_labels)
    x = torch.bernoulli(
        torch.full((7, 9), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        joint = torch.stack([model.log_prob(x, cond=torch.full((7,), c)) for c in range(3)], 1)
    joint = joint + torch.tensor([2 / 6, 1 / 6, 3 / 6], dtype=torch.float64).log()
    by_hand = joint - torch.logsumexp(joint, 1, keepdim=True)
    assert torch.allclose(clf.predict_log_proba(x), by_hand, atol=1e-12)
    assert torch.allclose(generative_classifier(model).log_prior.exp(), torch.full((3,), 1 / 3).double())
    with pytest.raises(ChainruleError, match="not class-conditional"):
        class_densities(GatedPixelCNN([3, 3], channels=6, layers=1, output_channels=6))


def test_generative_classifier_from_a_class_conditional_model_fitted_on_digits(tmp_path):
    from chainrule.data import load_dataset
    from chainrule.training import TrainConfig, fit

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = GatedPixelCNN([8, 8], channels=16, layers=3, output_channels=16, num_classes=10)
    fit(
        model, data, TrainConfig(batch_size=32, max_epochs=6, lr=0.01, progress=False, seed=0), tmp_path / "r"
    )
    clf = generative_classifier(model, data.labels["train"])
    accuracy = clf.score(data.test, data.labels["test"])
    assert accuracy > 0.75, accuracy  # chance is 0.1; 0.87 when written


# -- the command line ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny 28x28 8-bit density model, a tiny classifier of 28x28 images, and 8x8 ones."""
    root = tmp_path_factory.mktemp("defend")
    torch.manual_seed(0)
    small = dict(channels=4, layers=1, output_channels=4, head="logistic", components=1, num_values=256)
    save(randomized(GatedPixelCNN([28, 28], **small), std=0.2), root / "model")
    save(randomized(GatedPixelCNN([8, 8], **small), std=0.2), root / "model8")
    save_classifier(CNNClassifier([28, 28], 256, 10, channels=[4], hidden=8), root / "clf")
    save_classifier(CNNClassifier([8, 8], 256, 10, channels=[4], hidden=8), root / "clf8")
    return root


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_defend_happy_path(saved, tmp_path, capsys):
    png = tmp_path / "d.png"
    argv = [
        "defend",
        saved / "model",
        "--classifier",
        saved / "clf",
        "--data",
        "fashion-mnist",
        "-n",
        2,
        "--reference",
        5,
        "--eps",
        "8/255",
        "--defend-eps",
        "4/255",
        "--pgd-steps",
        2,
        "--out",
        png,
    ]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert [r["input"] for r in result["rows"]] == ["clean", "fgsm", "pgd"]
    assert result["defend_eps_levels"] == 4 and result["n"] == 2
    assert "det. AUROC" in err and result["out"] == str(png) and png.stat().st_size > 1000


@pytest.mark.parametrize(
    "change, message",
    [
        (["--eps", "2"], r"--eps=2.0 is outside \[0, 1\]"),
        (["--eps", "-8/255"], r"outside \[0, 1\]"),
        (["--defend-eps", "1.5"], r"--defend-eps=1.5 is outside \[0, 1\]"),
        (["--data", "binarized-mnist"], "8-bit images"),
        (["--data", "digits"], "8-bit images"),
        (["--classifier", "{root}/clf8"], r"classifier was trained on images of shape \(8, 8\)"),
        (["--model", "{root}/model8"], r"density model was trained on images of shape \(8, 8\)"),
        (["--model", "{root}/clf"], "holds a classifier"),
        (["--classifier", "{root}/model"], "holds a density model"),
        (["-n", "0"], "-n must be at least 1"),
    ],
)
def test_cli_defend_bad_input_is_a_clear_error(saved, tmp_path, capsys, change, message):
    opts = {"--model": f"{saved}/model", "--classifier": f"{saved}/clf", "--data": "fashion-mnist", "-n": "2"}
    # "k=v" tokens, so that a value like -8/255 is not read as an option
    opts[change[0]] = change[1].format(root=saved)
    model = opts.pop("--model")
    argv = ["defend", model, *[f"{k}={v}" for k, v in opts.items()], "--out", tmp_path / "x.png"]
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == ""
    assert err.startswith("chainrule: error:") and "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_cli_classifier_train_and_eval(tmp_path, capsys):
    out_dir = tmp_path / "cnn"
    argv = [
        "classifier",
        "train",
        "--data",
        "digits",
        "--out",
        out_dir,
        "--epochs",
        2,
        "--channels",
        "8",
        "--hidden",
        16,
        "--batch-size",
        64,
    ]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])  # the progress bar writes to stdout too
    assert 0.1 < metrics["test_accuracy"] <= 1 and metrics["epochs"] == 2
    config = json.loads((out_dir / "config.json").read_text())
    assert config["classifier"] == "cnn" and config["training"]["test_accuracy"] == metrics["test_accuracy"]
    rc, out, err = run(["classifier", "eval", out_dir, "--data", "digits"], capsys)
    assert rc == 0 and json.loads(out)["accuracy"] == pytest.approx(metrics["test_accuracy"])
    rc, out, err = run(argv, capsys)  # the folder is taken now
    assert rc == 2 and "already holds" in err
    rc, out, err = run(["classifier", "eval", out_dir, "--data", "fashion-mnist"], capsys)
    assert rc == 2 and "(8, 8) images" in err
    rc, out, err = run(
        ["classifier", "train", "--data", "digits", "--out", tmp_path / "x", "--channels", "8,0"], capsys
    )
    assert rc == 2 and "--channels" in err
    rc, out, err = run(["classifier"], capsys)
    assert rc == 2 and "needs an action" in err


def test_benchmark_script_writes_its_json_and_picture(saved, tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # the repository root
    from benchmarks.pixeldefend import format_result
    from benchmarks.pixeldefend import main as benchmark

    argv = ["--model", saved / "model", "--classifier", saved / "clf", "-n", 2, "--reference", 5,
            "--eps", "16/255", "--pgd-steps", 2, "--results", tmp_path, "--name", "pd"]  # fmt: skip
    payload = benchmark([str(a) for a in argv])
    saved_json = json.loads((tmp_path / "pd.json").read_text())
    assert saved_json["rows"] == payload["rows"] and "machine" in saved_json
    assert (tmp_path / "pd.png").stat().st_size > 1000
    assert set(saved_json["targets"]["met"]) == {
        "detection_auroc_at_16_at_least_0.9",
        "purification_gain_at_16_at_least_30_points",
        "purification_gain_every_attack_at_least_30_points",
        "clean_drop_at_most_5_points",
    }
    assert "density model: gated-pixelcnn" in format_result(saved_json)
