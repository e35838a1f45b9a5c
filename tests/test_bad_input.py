"""Bad input gets a clear ChainruleError (one line from the CLI), never a deep torch traceback."""

# The contract suite (tests/contract) checks every model refuses wrong shapes, NaN and bad values with
# a ChainruleError; here: what the messages say, and datasets, recipes and the CLI.

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.models import NADE
from chainrule.recipes import load_recipe


def test_error_messages_name_the_problem() -> None:
    model = NADE(6, hidden=4)
    with pytest.raises(ChainruleError, match="binary"):
        model.log_prob(torch.full((2, 6), 0.5))
    x = torch.zeros(2, 6)
    x[1, 3] = float("nan")
    with pytest.raises(ChainruleError, match="NaN"):
        model.log_prob(x)
    with pytest.raises(ChainruleError, match="shape"):
        model.log_prob(torch.zeros(2, 7))
    with pytest.raises(ChainruleError, match="empty"):
        model.log_prob(torch.zeros(0, 6))


def test_other_shapes_with_the_right_size_are_accepted() -> None:
    model = NADE(6, hidden=4)
    assert model.log_prob(torch.zeros(3, 2, 3)).shape == (3,)


def test_unknown_dataset() -> None:
    with pytest.raises(ChainruleError, match="unknown dataset 'cifar-11'.*binarized-mnist"):
        load_dataset("cifar-11")


def test_recipe_unknown_keys(tmp_path) -> None:
    r = tmp_path / "r.yaml"
    r.write_text("model: {name: nade, hiden: 5}\ndata: {name: digits}\n")
    with pytest.raises(ChainruleError, match="hiden"):
        load_recipe(r)
    r.write_text("model: {name: nade}\ndata: {name: digits}\ntrain: {learning_rate: 1}\n")
    with pytest.raises(ChainruleError, match="learning_rate"):
        load_recipe(r)
    r.write_text("model: {name: nade}\ndata: {name: digits}\n")
    with pytest.raises(ChainruleError, match="epochs"):
        load_recipe(r, ["train.epochs=3"])
    with pytest.raises(ChainruleError, match="unknown section"):
        load_recipe(r, ["optimizer.lr=3"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "no/such/dir", "--data", "digits"], "does not exist"),
        (["train", "no-such-recipe.yaml"], "not found"),
        (["sample", "no/such/dir"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line(args, message) -> None:
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_unknown_dataset_and_mismatched_model(tmp_path) -> None:
    from chainrule.persistence import save

    save(NADE(6, hidden=3), tmp_path / "m")
    r = run_cli("eval", str(tmp_path / "m"), "--data", "mnist-colour")
    assert r.returncode == 2 and "unknown dataset" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("eval", str(tmp_path / "m"), "--data", "digits")
    assert r.returncode == 2 and "64 dimensions" in r.stderr


def test_cli_help() -> None:
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout and "sample" in r.stdout
