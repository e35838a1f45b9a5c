"""save -> load reproduces log_prob bit for bit; broken model folders give clear errors."""

# The contract suite (tests/contract) round-trips each family's tiny_config(); here: the other
# variants (explicit orders, ensembles) and damaged folders.

from __future__ import annotations

import json

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import MADE, NADE
from chainrule.persistence import load, save
from tests.conftest import all_binary, beyond_contract, small_models

MODELS = small_models(8)


@pytest.mark.parametrize("name", beyond_contract(MODELS))
def test_roundtrip_is_bit_exact(name: str, tmp_path) -> None:
    model = MODELS[name]
    save(model, tmp_path / "m")
    again = load(tmp_path / "m")
    x = all_binary(8)
    assert torch.equal(model.log_prob(x), again.log_prob(x))
    assert type(again) is type(model)


def test_files_are_safetensors_and_json(tmp_path) -> None:
    save(MADE(6, hidden=[10], num_masks=2), tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model"] == "made" and cfg["args"]["num_masks"] == 2


def test_missing_directory(tmp_path) -> None:
    with pytest.raises(ChainruleError, match="does not exist"):
        load(tmp_path / "nope")


def test_a_run_folder_points_at_its_model(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "run" / "model")
    with pytest.raises(ChainruleError, match=r"is a training run; its model is .*run/model"):
        load(tmp_path / "run")


def test_missing_weights(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ChainruleError, match="missing"):
        load(tmp_path / "m")


def test_corrupt_config(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ChainruleError, match="corrupt"):
        load(tmp_path / "m")


def test_truncated_weights(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(ChainruleError, match="corrupt(,| or) truncated"):
        load(tmp_path / "m")


def test_mismatched_weights_and_config(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "a")
    save(NADE(5, hidden=4), tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(ChainruleError, match="does not match"):
        load(tmp_path / "a")


def test_unknown_model_class(tmp_path) -> None:
    save(NADE(5, hidden=3), tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["model"] = "wavenet9000"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ChainruleError, match="unknown model"):
        load(tmp_path / "m")
