"""Super-resolution (issue 8): draws given the low-resolution image, the exact conditional NLL, the
blocky upsampling, the `chainrule complete --superres` picture and JSON, and clear errors. The
models are tiny and untrained, so nothing here checks that draws downsample to their condition."""

from __future__ import annotations

import json
import math

import pytest
import torch

from chainrule.cli import main
from chainrule.errors import ChainruleError
from chainrule.models import GatedPixelCNN
from chainrule.persistence import save
from chainrule.tasks.superres import lowres_factor, super_resolve, superres_log_prob, upsample


def tiny(factor: int = 2, **kwargs) -> GatedPixelCNN:
    torch.manual_seed(0)
    model = GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4, lowres_factor=factor, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.4)
    return model.eval()


def binary_images(n: int = 3, d: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, d), 0.5), generator=torch.Generator().manual_seed(seed))


def test_draws_have_the_right_shape_and_levels_and_are_seeded():
    model, x = tiny(), binary_images()
    draws = super_resolve(model, x, samples=4, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (3, 4, 64)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    again = super_resolve(model, x, samples=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)
    other = super_resolve(model, x, samples=4, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(draws, other)


def test_eight_bit_draws_stay_in_range():
    model = tiny(4, num_values=256, head="logistic", components=1)
    x = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(0)).float()
    draws = super_resolve(model, x, samples=2, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (2, 2, 64) and draws.min() >= 0 and draws.max() <= 255
    assert torch.equal(draws, draws.round())


def test_draws_are_model_samples_given_the_lowres_condition():
    model, x = tiny(), binary_images(2)
    draws = super_resolve(model, x, samples=2, generator=torch.Generator().manual_seed(5))
    low = model.condition_from(x).repeat_interleave(2, 0)
    direct = model.sample(4, cond=low, generator=torch.Generator().manual_seed(5))
    assert torch.equal(draws.reshape(4, 64), direct)


def test_conditional_nll_is_minus_log_prob():
    model, x = tiny().double(), binary_images(5).double()
    lp = superres_log_prob(model, x)
    assert lp.shape == (5,)
    assert torch.allclose(lp, model.log_prob(x), atol=1e-12)
    assert torch.allclose(lp, model.log_prob(x, cond=model.condition_from(x)), atol=1e-12)


def test_conditional_likelihood_sums_to_one_given_a_lowres_image():
    """Over all 2^16 images of 4x4 with a fixed 2x2 condition, p(x | low) sums to 1."""
    torch.manual_seed(0)
    model = GatedPixelCNN([4, 4], channels=4, layers=2, output_channels=4, lowres_factor=2).double().eval()
    xs = torch.tensor([[(i >> k) & 1 for k in range(16)] for i in range(1 << 16)], dtype=torch.float64)
    low = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64).expand(len(xs), -1)
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(xs, cond=low), 0)
    assert abs(float(total)) < 1e-9


def test_upsample_repeats_each_lowres_pixel_in_a_block():
    model = tiny(4)
    low = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    up = upsample(model, low).reshape(8, 8)
    assert up[:4, :4].eq(0).all() and up[:4, 4:].eq(1).all() and up[4:, :4].eq(1).all()
    assert up[4:, 4:].eq(0).all()
    assert torch.equal(model.condition_from(up.reshape(1, 64)), low)
    with pytest.raises(ChainruleError, match=r"low must be \(N, 4\)"):
        upsample(model, torch.zeros(1, 5))


def test_publish_zoo_pictures_of_a_superres_model(tmp_path) -> None:
    """scripts/publish_zoo.py: a p(x | low-res x) model's samples are drawn given test images'
    low-resolution versions (it has no unconditional samples), and the superres picture is written."""
    import sys
    from pathlib import Path

    from chainrule.data import load_dataset

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import publish_zoo

    extras = publish_zoo.image_extras(tiny(2), load_dataset("digits"), tmp_path)
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "superres.png").is_file()
    assert "superres_command" in extras and "bottom_half_conditional_nll" not in extras


def test_models_without_lowres_factor_are_a_clear_error():
    plain = GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4)
    for task in (super_resolve, superres_log_prob):
        with pytest.raises(ChainruleError, match="no lowres_factor"):
            task(plain, binary_images())
    with pytest.raises(ChainruleError, match="no lowres_factor"):
        lowres_factor(plain)
    with pytest.raises(ChainruleError, match="samples must be at least 1"):
        super_resolve(tiny(), binary_images(), samples=0)
    with pytest.raises(ChainruleError, match=r"x must be \(N, 64\)"):
        super_resolve(tiny(), binary_images(d=63))


# -- the command line ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("superres")
    save(tiny(), root / "sr")
    save(GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4), root / "plain")
    return root


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_superres_writes_a_picture_and_the_conditional_nll(saved, tmp_path, capsys):
    png = tmp_path / "s.png"
    argv = ["complete", saved / "sr", "--data", "digits", "--superres", "-n", 3, "--samples", 2, "--out", png]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert result["n"] == 3 and result["samples"] == 2 and result["superres_factor"] == 2
    assert result["lowres_shape"] == [4, 4, 1] and png.stat().st_size > 1000
    from chainrule.data import load_dataset
    from chainrule.persistence import load

    x = load_dataset("digits").test[:3].float()
    nll = -superres_log_prob(load(saved / "sr"), x).double()
    assert result["conditional_nll_nats"] == pytest.approx(float(nll.mean()), rel=1e-6)
    assert result["conditional_nll_stderr"] == pytest.approx(float(nll.std() / math.sqrt(3)), rel=1e-5)
    assert result["conditional_bits_per_dim"] == pytest.approx(float(nll.mean()) / 64 / math.log(2), rel=1e-6)


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("plain", ["--superres"], r"--superres needs a super-resolution model .*has no lowres_factor"),
        ("sr", [], "is a super-resolution model .*use --superres"),
        ("sr", ["--superres", "--mask", "bottom-half"], "--superres and --mask exclude each other"),
        ("sr", ["--superres", "--samples", "0"], "--samples must be at least 1"),
        ("sr", ["--superres", "-n", "0"], "-n must be at least 1"),
    ],
)
def test_cli_superres_bad_input_is_a_clear_error(saved, tmp_path, capsys, model, extra, message):
    argv = ["complete", saved / model, "--data", "digits", *extra, "--out", tmp_path / "x.png"]
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == "" and "Traceback" not in err
    assert __import__("re").search(message, err), err
