"""Completion (inpainting): masks from specs, observed pixels never change, the exact
conditional likelihood sums to one over the missing part, CLI picture and clear errors."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import GatedPixelCNN, PixelCNN
from chainrule.persistence import save
from chainrule.tasks.complete import complete, conditional_log_prob, mask_for_model, pixel_mask


def small(cls=GatedPixelCNN, shape=(2, 3)):
    torch.manual_seed(0)
    model = cls(list(shape), channels=6, output_channels=6).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.4)
    return model


def test_mask_specs():
    assert pixel_mask("bottom-half", 4, 2).tolist() == [
        [True, True],
        [True, True],
        [False, False],
        [False, False],
    ]
    assert pixel_mask("left-half", 1, 4).tolist() == [[False, False, True, True]]
    assert not pixel_mask("random:1", 3, 3).any() and pixel_mask("random:0", 3, 3).all()
    frac = 1 - pixel_mask("random:0.3", 100, 100, torch.Generator().manual_seed(0)).float().mean()
    assert abs(frac - 0.3) < 0.02
    for bad, msg in [("random:x", "number"), ("random:1.5", r"\[0, 1\]"), ("middle", "unknown mask")]:
        with pytest.raises(ChainruleError, match=msg):
            pixel_mask(bad, 4, 4)


def test_png_masks_and_their_shape_is_checked(tmp_path):
    img = np.zeros((4, 4))
    img[:, 3] = 1.0  # the last column is missing
    mpimg.imsave(tmp_path / "m.png", img, cmap="gray")
    assert pixel_mask(str(tmp_path / "m.png"), 4, 4)[:, 3].logical_not().all()
    assert pixel_mask(str(tmp_path / "m.png"), 4, 4)[:, :3].all()
    with pytest.raises(ChainruleError, match="4x4; the images are 5x5"):
        pixel_mask(str(tmp_path / "m.png"), 5, 5)
    with pytest.raises(ChainruleError, match="does not exist"):
        pixel_mask(str(tmp_path / "none.png"), 4, 4)


def test_colour_masks_cover_all_three_channels():
    model = GatedPixelCNN([2, 2, 3], channels=6, output_channels=6)
    assert mask_for_model("bottom-half", model).tolist() == [True] * 6 + [False] * 6


@pytest.mark.parametrize("cls", [GatedPixelCNN, PixelCNN])
def test_conditional_likelihood_of_the_missing_half_sums_to_one(cls):
    model = small(cls)
    observed = mask_for_model("bottom-half", model)  # 3 observed, 3 missing
    top = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    rows = torch.tensor([[*top, *b] for b in itertools.product([0.0, 1.0], repeat=3)], dtype=torch.float64)
    total = conditional_log_prob(model, rows, observed).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-10)


def test_completions_keep_observed_pixels():
    model = small()
    x = torch.bernoulli(
        torch.full((4, 6), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    observed = mask_for_model("random:0.5", model, torch.Generator().manual_seed(0))
    out = complete(model, x, observed, samples=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 5, 6)
    assert torch.equal(out[:, :, observed], x[:, None, observed].expand(4, 5, -1))
    with pytest.raises(ChainruleError, match="exact conditional"):
        conditional_log_prob(model, x, ~mask_for_model("bottom-half", model))


def test_wrong_mask_shape_is_a_clear_error():
    model = small()
    with pytest.raises(ChainruleError, match="mask has shape"):
        complete(model, torch.zeros(2, 6, dtype=torch.float64), torch.ones(5, dtype=torch.bool))


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_complete_writes_a_picture_and_reports_the_conditional_nll(tmp_path):
    model = GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4)
    save(model, tmp_path / "m")
    rc, out, err = run_cli(
        "complete",
        str(tmp_path / "m"),
        "--data",
        "digits",
        "-n",
        "2",
        "--samples",
        "2",
        "--out",
        str(tmp_path / "c.png"),
    )
    assert rc == 0, err
    result = json.loads(out)
    assert result["missing_dims"] == 32 and result["conditional_nll_nats"] > 0
    assert (tmp_path / "c.png").stat().st_size > 0
    rc, out, err = run_cli("complete", str(tmp_path / "m"), "--data", "binarized-mnist", "-n", "1")
    assert rc != 0 and "shape (28, 28)" in err and "Traceback" not in err
    rc, out, err = run_cli("complete", str(tmp_path / "m"), "--data", "digits", "--mask", "random:7")
    assert rc != 0 and "[0, 1]" in err and "Traceback" not in err


def test_cli_samples_one_row_per_class(tmp_path):
    model = GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4, num_classes=3)
    save(model, tmp_path / "m")
    rc, out, err = run_cli(
        "sample", str(tmp_path / "m"), "--per-class", "2", "--out", str(tmp_path / "s.png")
    )
    assert rc == 0, err
    assert json.loads(out)["n"] == 6
    plain = GatedPixelCNN([8, 8], channels=4, layers=1, output_channels=4)
    save(plain, tmp_path / "p")
    rc, out, err = run_cli(
        "sample", str(tmp_path / "p"), "--per-class", "2", "--out", str(tmp_path / "s.png")
    )
    assert rc != 0 and "class-conditional" in err
