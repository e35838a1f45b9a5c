"""Training checks a dataset's values once, before the first step, and the steps then skip the
per-batch value checks (`values_checked_upstream`); bad data still fails, up front."""

from __future__ import annotations

import sys

import pytest
import torch

from chainrule.data import Dataset, load_dataset
from chainrule.errors import ChainruleError
from chainrule.models import FVSBN, NADE, RNADE
from chainrule.training import TrainConfig, fit
from chainrule.training.objectives import check_dataset_values
from chainrule.validation import check_discrete, check_finite, values_checked_upstream


def binary(train: torch.Tensor, val: torch.Tensor | None = None, **kw) -> Dataset:
    val = train[:8] if val is None else val
    return Dataset(name="toy", train=train, val=val, test=val, num_values=2, **kw)


def test_inside_the_block_value_checks_pass_and_outside_they_refuse() -> None:
    bad = torch.full((2, 3), 0.5)
    with values_checked_upstream():
        check_discrete(bad, 2)
        check_finite(torch.tensor([float("nan")]))
        with values_checked_upstream():
            pass
        check_discrete(bad, 2)  # still on after a nested block ends
    with pytest.raises(ChainruleError, match="binary"):
        check_discrete(bad, 2)
    with pytest.raises(ChainruleError, match="NaN"):
        check_finite(torch.tensor([float("nan")]))


def test_a_checked_dataset_lets_the_batches_skip_the_checks() -> None:
    data = binary(torch.bernoulli(torch.full((64, 5), 0.5)))
    assert check_dataset_values(FVSBN(5), data)
    grey = binary(torch.rand(64, 5), val=torch.bernoulli(torch.full((8, 5), 0.5)), dynamic_binarization=True)
    assert check_dataset_values(FVSBN(5), grey)  # binarize() draws exact 0/1 values
    continuous = Dataset(
        name="c", train=torch.randn(64, 3), val=torch.randn(8, 3), test=torch.randn(8, 3), num_values=0
    )
    assert check_dataset_values(RNADE(3, hidden=4, components=2), continuous)


@pytest.mark.parametrize("split", ["train", "val"])
def test_bad_values_are_refused_before_training_naming_the_split(split: str, tmp_path) -> None:
    good = torch.bernoulli(torch.full((64, 5), 0.5))
    bad = good.clone()
    bad[40 if split == "train" else 3, 2] = 0.5
    data = binary(bad, val=good[:8]) if split == "train" else binary(good, val=bad[:8])
    with pytest.raises(ChainruleError, match=f"the {split} split of 'toy'.*binary"):
        check_dataset_values(FVSBN(5), data)
    with pytest.raises(ChainruleError, match=f"the {split} split"):
        fit(FVSBN(5), data, TrainConfig(batch_size=16, max_epochs=1, progress=False), tmp_path / "run")
    nan = good.clone()
    nan[5, 1] = float("nan")
    with pytest.raises(ChainruleError, match="the train split"):
        check_dataset_values(
            RNADE(5, hidden=4, components=2),
            Dataset(name="c", train=nan, val=good[:8], test=good[:8], num_values=0),
        )


def test_training_on_checked_values_gives_the_same_run(tmp_path, monkeypatch) -> None:
    """Skipping the per-batch checks changes no number: the same seed gives the same weights."""
    fit_module = sys.modules["chainrule.training.fit"]
    data = load_dataset("bars-3")
    cfg = TrainConfig(batch_size=64, max_epochs=2, lr=1e-2, progress=False, seed=1)
    states = []
    for name, checked in (("checked", True), ("per-batch", False)):
        monkeypatch.setattr(fit_module, "check_dataset_values", lambda model, data, c=checked: c)
        torch.manual_seed(0)
        model = NADE(9, hidden=4)
        fit(model, data, cfg, tmp_path / name)
        states.append(model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
