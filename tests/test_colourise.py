"""Colourisation (issue 21, item 8): the declared greyscale transform, the colour Gated PixelCNN
p(x | greyscale(x)) through the contract checks with its condition, the task functions and
`chainrule complete --colourise`. The models are tiny and untrained."""

from __future__ import annotations

import json
import math

import pytest
import torch

from chainrule.checks import check_model
from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.greyscale import greyscale
from chainrule.models import GatedPixelCNN
from chainrule.persistence import load, save
from chainrule.tasks.colourise import colourise, colourise_log_prob, colourise_report, grey_levels

#: the one-bit colours R, G, B of colour-mnist-2: black, blue, green, cyan, red, magenta, yellow, white
CODES = torch.tensor([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], dtype=torch.float64)


def tiny(levels: int = 2, method: str = "value", shape=(2, 2, 3), seed: int = 0) -> GatedPixelCNN:
    torch.manual_seed(seed)
    model = GatedPixelCNN(
        list(shape),
        channels=4,
        layers=2,
        first_kernel=3,
        output_channels=4,
        grey_levels=levels,
        grey_method=method,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.double().eval()


def colour_images(n: int = 4, d: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(
        torch.full((n, d), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(seed)
    )


# -- the greyscale transform ---------------------------------------------------------------------------
def test_luminance_of_the_eight_one_bit_colours():
    """BT.601 luma 0, .114, .587, .701, .299, .413, .886, 1 → 8 levels: all distinct (the colour is given
    away); 2 levels: blue, red and magenta go black."""
    assert greyscale(CODES.reshape(1, 24), (1, 8, 3), 2, 8).tolist() == [[0, 1, 4, 5, 2, 3, 6, 7]]
    assert greyscale(CODES.reshape(1, 24), (1, 8, 3), 2, 2).tolist() == [[0, 0, 1, 1, 0, 0, 1, 1]]


def test_value_is_the_brightest_channel():
    assert greyscale(CODES.reshape(1, 24), (1, 8, 3), 2, 2, "value").tolist() == [[0] + [1] * 7]
    x = torch.tensor([[255.0, 0, 0, 10, 200, 30, 0, 0, 0, 128, 128, 128]])
    assert greyscale(x, (2, 2, 3), 256, 256, "value").tolist() == [[255, 200, 0, 128]]
    assert greyscale(x, (2, 2, 3), 256, 4, "value").tolist() == [[3, 2, 0, 2]]  # 128/255*3 = 1.506


def test_eight_bit_luminance_and_one_channel_images():
    white, grey = torch.tensor([[255.0, 255, 255]]), torch.tensor([[100.0, 100, 100]])
    assert greyscale(white, (1, 1, 3), 256, 256).item() == 255
    assert greyscale(grey, (1, 1, 3), 256, 256).item() == 100
    one = torch.tensor([[0.0, 3, 2, 1]])
    assert torch.equal(greyscale(one, (2, 2), 4, 4), one)


def test_colour_mnist_2_value_grey_is_the_binarized_digit():
    data = load_dataset("colour-mnist-2")
    x = data.test[:50]
    on = (x.reshape(50, 784, 3).sum(-1) > 0).float()
    assert torch.equal(greyscale(x, data.image_shape, 2, 2, "value"), on)


def test_greyscale_bad_input_is_a_clear_error():
    x = torch.zeros(1, 12)
    with pytest.raises(ChainruleError, match="unknown greyscale method"):
        greyscale(x, (2, 2, 3), 2, 2, "hue")
    with pytest.raises(ChainruleError, match="at least 2 levels"):
        greyscale(x, (2, 2, 3), 2, 1)
    with pytest.raises(ChainruleError, match=r"x must be \(B, 12\)"):
        greyscale(torch.zeros(1, 11), (2, 2, 3), 2, 2)
    with pytest.raises(ChainruleError, match="RGB"):
        greyscale(torch.zeros(1, 8), (2, 2, 2), 2, 2)


# -- the conditional model through the contract ----------------------------------------------------------
@pytest.mark.parametrize("levels, method", [(2, "value"), (4, "luminance")])
def test_colourisation_model_passes_the_contract_with_its_condition(levels, method):
    """Every contract check, with conditions derived from images by the model's condition_from: the
    ones that must apply to an image-conditioned autoregressive model do."""
    ran = check_model(tiny(levels, method).float())
    must = {
        "check_normalisation",
        "check_terms_sum_to_log_prob",
        "check_autoregressive_dependency",
        "check_fast_equals_generic",
        "check_uses_condition",
        "check_save_load",
        "check_bad_input",
    }
    assert must <= set(ran), sorted(must - set(ran))


def test_log_prob_depends_on_the_condition_and_sums_to_one_given_it():
    model, x = tiny(), colour_images()
    lit, dark = torch.ones(4, 4, dtype=torch.float64), torch.zeros(4, 4, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(model.log_prob(x, cond=lit), model.log_prob(x, cond=dark))
        assert torch.allclose(model.log_prob(x), model.log_prob(x, cond=model.condition_from(x)))
        xs = torch.tensor([[(i >> k) & 1 for k in range(12)] for i in range(1 << 12)], dtype=torch.float64)
        cond = torch.tensor([[1.0, 0, 0, 1]], dtype=torch.float64).expand(len(xs), -1)
        assert abs(float(torch.logsumexp(model.log_prob(xs, cond=cond), 0))) < 1e-9


def test_autoregressive_dependency_with_the_condition_fixed():
    """The logit of x_d given x_<d and the grey image has zero gradient with respect to every x_e,
    e >= d (the grey image held fixed), and most have a nonzero one with respect to some earlier value."""
    model = tiny(shape=(3, 3, 3))
    x = colour_images(1, 27, seed=3).requires_grad_(True)
    logits = model.conditioner(x, model.condition_from(x.detach()))[0]
    grads = torch.stack([torch.autograd.grad(logits[d], x, retain_graph=True)[0][0] for d in range(27)])
    assert grads.triu().abs().max() == 0
    assert (grads.tril(-1).abs().sum(1) > 0).sum() > 13  # most logits do see the past


def test_cached_sampling_equals_generic_sampling_given_the_condition():
    model = tiny(shape=(3, 3, 3))
    cond = torch.tensor([[1.0, 0, 1, 1, 1, 0, 0, 1, 1], [0.0] * 9, [1.0] * 9], dtype=torch.float64)
    fast = model.sample(3, cond=cond, generator=torch.Generator().manual_seed(7))
    slow = model.sample(3, cond=cond, generator=torch.Generator().manual_seed(7), method="generic")
    assert torch.equal(fast, slow)


def test_condition_is_checked():
    model, x = tiny(), colour_images()
    with pytest.raises(ChainruleError, match="integer levels 0..1"):
        model.log_prob(x, cond=torch.full((4, 4), 2.0, dtype=torch.float64))
    with pytest.raises(ChainruleError, match="greyscale images of 2x2"):
        model.log_prob(x, cond=torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(ChainruleError, match="condition on one of"):
        GatedPixelCNN([2, 2, 3], lowres_factor=2, grey_levels=2)
    with pytest.raises(ChainruleError, match="unknown greyscale method"):
        GatedPixelCNN([2, 2, 3], grey_levels=2, grey_method="hue")


# -- the task ----------------------------------------------------------------------------------------
def test_colourise_draws_and_conditional_nll():
    model, x = tiny(), colour_images()
    grey = model.condition_from(x)
    draws = colourise(model, grey, 3, torch.Generator().manual_seed(1))
    assert draws.shape == (4, 3, 12) and set(draws.unique().tolist()) <= {0.0, 1.0}
    direct = model.sample(12, cond=grey.repeat_interleave(3, 0), generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws.reshape(12, 12), direct)
    assert torch.allclose(colourise_log_prob(model, x), model.log_prob(x, cond=grey))
    _, grey2, stats = colourise_report(model, x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(grey2, grey) and stats["grey_levels"] == 2 and stats["grey_method"] == "value"
    nll = -colourise_log_prob(model, x)
    assert stats["conditional_bits_per_dim"] == pytest.approx(float(nll.mean()) / 12 / math.log(2))


def test_models_without_grey_levels_are_a_clear_error():
    plain = GatedPixelCNN([2, 2, 3], channels=4, layers=1, output_channels=4)
    with pytest.raises(ChainruleError, match="no grey_levels"):
        grey_levels(plain)
    with pytest.raises(ChainruleError, match="no grey_levels"):
        colourise(plain, torch.zeros(1, 4))
    with pytest.raises(ChainruleError, match=r"grey must be \(N, 4\)"):
        colourise(tiny(), torch.zeros(1, 12))


# -- the command line --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("colourise")
    save(tiny(shape=(28, 28, 3)).float(), root / "col")
    return root


def test_cli_colourise_writes_a_picture_and_the_conditional_nll(saved, tmp_path, capsys):
    png = tmp_path / "c.png"
    argv = ["complete", saved / "col", "--data", "colour-mnist-2", "--colourise", "-n", 2, "--samples", 2]
    rc = main([str(a) for a in [*argv, "--out", png]])
    out = capsys.readouterr()
    assert rc == 0, out.err
    result = json.loads(out.out)
    assert result["n"] == 2 and result["samples"] == 2 and result["grey_levels"] == 2
    assert png.stat().st_size > 1000
    x = load_dataset("colour-mnist-2").test[:2]
    nll = -colourise_log_prob(load(saved / "col"), x).double()
    assert result["conditional_nll_nats"] == pytest.approx(float(nll.mean()), rel=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--colourise", "--superres"], "exclude each other"),
        (["--colourise", "--mask", "bottom-half"], "--colourise and --mask exclude each other"),
        (["--superres"], "--superres needs a super-resolution model"),
        ([], "is a colourisation model (conditioned on a greyscale image): use --colourise"),
    ],
)
def test_cli_colourise_bad_input_is_a_clear_error(saved, tmp_path, capsys, extra, message):
    rc = main(
        [str(a) for a in ["complete", saved / "col", "--data", "colour-mnist-2", *extra]]
        + ["--out", str(tmp_path / "x.png")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and message in err, err
