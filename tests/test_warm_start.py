"""Warm starts (`train.init_from`) copy what the weights need to mean the same thing: a MADE's
mask degrees come with its weights, so the warm-started network is the saved one."""

from pathlib import Path

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import build_model
from chainrule.persistence import save
from chainrule.training import warm_start


def _saved(tmp_path: Path, **config) -> tuple[torch.nn.Module, Path]:
    model = build_model("made", dim=12, hidden=[32], **config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    folder = tmp_path / "source"
    save(model, folder)
    return model, folder


def _data() -> torch.Tensor:
    return torch.randint(0, 2, (64, 12), generator=torch.Generator().manual_seed(0)).float()


def test_a_made_warm_started_from_one_with_other_degrees_is_that_model(tmp_path):
    source, folder = _saved(tmp_path, seed=1)
    target = build_model("made", dim=12, hidden=[32], seed=2)  # other hidden degrees
    assert not torch.equal(source.hidden_degrees_0, target.hidden_degrees_0)
    warm_start(target, folder)
    torch.testing.assert_close(target.log_prob(_data()), source.log_prob(_data()))


def test_growing_one_mask_into_an_ensemble_keeps_it_as_member_0(tmp_path):
    source, folder = _saved(tmp_path, seed=1)
    target = build_model("made", dim=12, hidden=[32], num_masks=4, seed=2)
    warm_start(target, folder)
    target.use_mask(0)
    torch.testing.assert_close(target.training_log_prob(_data()), source.log_prob(_data()))
    fresh = build_model("made", dim=12, hidden=[32], num_masks=4, seed=2)
    assert torch.equal(target.hidden_degrees_0[1:], fresh.hidden_degrees_0[1:])  # the others: its own


def test_a_source_with_other_parameter_shapes_is_refused(tmp_path):
    _, folder = _saved(tmp_path, seed=1)
    target = build_model("made", dim=12, hidden=[16])
    with pytest.raises(ChainruleError, match="init_from=.*parameter .* another shape"):
        warm_start(target, folder)
