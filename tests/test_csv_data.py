"""Your own CSV file as a dataset: codes, header detection, the fixed split, clear errors, CLI round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.data.csv_file import csv_dataset, split_rows
from chainrule.errors import ChainruleError


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def table(n: int, d: int = 4, k: int = 2, header: bool = True) -> str:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(k, (n, d), generator=g)
    lines = [",".join(f"c{j}" for j in range(d))] if header else []
    lines += [",".join(map(str, r)) for r in x.tolist()]
    return "\n".join(lines) + "\n"


def test_binary_csv_with_header(tmp_path) -> None:
    d = load_dataset("csv:" + write(tmp_path / "a.csv", table(100)))
    assert d.num_values == 2 and d.dim == 4 and d.columns == ["c0", "c1", "c2", "c3"]
    assert (len(d.train), len(d.val), len(d.test)) == (80, 10, 10)
    assert d.image_shape is None and d.name.startswith("csv:")
    assert set(torch.cat([d.train, d.val, d.test]).unique().tolist()) <= {0.0, 1.0}


def test_kary_csv_without_header_and_fixed_split(tmp_path) -> None:
    path = write(tmp_path / "b.csv", table(57, d=3, k=5, header=False))
    a, b = csv_dataset(path), csv_dataset(path)
    assert a.num_values == 5 and a.columns == ["x0", "x1", "x2"]
    assert torch.equal(a.test, b.test) and torch.equal(a.train, b.train)
    idx = split_rows(57)
    together = sorted(sum((v.tolist() for v in idx.values()), []))
    assert together == list(range(57)) and len(idx["val"]) == len(idx["test"]) == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b\n" + "0,1\n" * 3, "at least 10 are needed"),
        ("a,b\n" + "0,1\n" * 10 + "0,1,1\n", "line 12: 3 fields, expected 2"),
        ("a,b\n" + "0,1\n" * 10 + "0,yes\n", "line 12, column 'b': 'yes' is not a non-negative integer"),
        ("a,b\n" + "0,1\n" * 10 + "0,\n", "an empty cell"),
        ("a,b\n" + "0,1\n" * 10 + "-1,0\n", "'-1' is not a non-negative integer"),
        ("a,b\n" + "0,1\n" * 10 + "0.5,0\n", "'0.5' is not"),
        ("a,a\n" + "0,1\n" * 10, "unique"),
        ("a,b\n" + "0,1\n" * 10 + "0,300\n", "at most 256 values"),
    ],
)
def test_bad_csv_files_give_clear_errors(tmp_path, text, message) -> None:
    with pytest.raises(ChainruleError, match=message):
        csv_dataset(write(tmp_path / "bad.csv", text))


def test_missing_file() -> None:
    with pytest.raises(ChainruleError, match="not found"):
        load_dataset("csv:/no/such/file.csv")


def test_train_smaller_than_batch_is_refused(tmp_path) -> None:
    from chainrule.models import MADE
    from chainrule.training import TrainConfig, fit

    d = csv_dataset(write(tmp_path / "s.csv", table(20)))
    with pytest.raises(ChainruleError, match="lower train.batch_size"):
        fit(MADE(4, hidden=[8]), d, TrainConfig(batch_size=64), tmp_path / "run")


def test_bn_sample_codes_train_and_sample_csv(tmp_path, capsys, monkeypatch) -> None:
    """bn sample --codes -> train on csv:PATH -> eval -> sample to CSV with the file's header."""
    monkeypatch.chdir(tmp_path)
    asia = Path(__file__).parent / "data" / "bif" / "asia.bif.gz"
    recipe = Path(__file__).parent.parent / "recipes" / "csv.yaml"
    assert main(["bn", "sample", str(asia), "-n", "300", "--codes", "--out", "asia.csv"]) == 0
    assert Path("asia.csv").read_text().splitlines()[1].replace(",", "").isdigit()
    capsys.readouterr()
    rc = main(["train", str(recipe), "data.name=csv:asia.csv", "train.max_epochs=2", "train.progress=false"])
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dataset"] == "csv:asia.csv" and metrics["test"]["n"] == 30
    assert main(["eval", "runs/csv/model", "--data", "csv:asia.csv"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 30
    assert main(["sample", "runs/csv/model", "-n", "7", "--out", "s.csv"]) == 0
    lines = Path("s.csv").read_text().splitlines()
    assert lines[0] == "asia,tub,smoke,lung,bronc,either,xray,dysp" and len(lines) == 8
    assert main(["sample", "runs/csv/model", "-n", "7", "--out", "s.png"]) == 2
    assert "use --out FILE.csv" in capsys.readouterr().err
