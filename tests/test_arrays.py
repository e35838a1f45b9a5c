"""On-disk array datasets (memory-mapped uint8 shards) and the counter-based dynamic binarization."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from chainrule.data import load_dataset
from chainrule.data.arrays import ArraySplit, SplitSource, export_dataset, write_array_dataset
from chainrule.data.binarize import binarize, uniform_bits
from chainrule.data.synthetic import write_synthetic_digits
from chainrule.errors import ChainruleError
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit


def test_export_then_train_from_disk_equals_training_from_memory(tmp_path) -> None:
    data = load_dataset("bars-3")
    export_dataset(data, tmp_path / "bars", shard_rows=700)  # 2100 train rows -> 3 shards
    disk = load_dataset(f"mmap:{tmp_path / 'bars'}")
    assert isinstance(disk.train, ArraySplit) and len(disk.train.shards) == 3
    for s in ("train", "val", "test"):
        assert torch.equal(getattr(disk, s)[:], getattr(data, s))
    cfg = TrainConfig(batch_size=64, max_epochs=1, progress=False, limit_train_batches=10)
    states = []
    for d, name in [(data, "memory"), (disk, "disk")]:
        torch.manual_seed(0)
        model = NADE(9, hidden=8)
        fit(model, d, cfg, tmp_path / name)
        states.append(model.state_dict())
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_synthetic_digits_on_disk(tmp_path) -> None:
    write_synthetic_digits(tmp_path / "syn", n_train=2500, n_val=300, n_test=200, shard_rows=1000)
    d = load_dataset(f"mmap:{tmp_path / 'syn'}")
    assert d.dynamic_binarization and d.image_shape == (28, 28) and d.dim == 784
    assert [len(d.train), len(d.val), len(d.test)] == [2500, 300, 200]
    assert [f.name for f in d.train.files] == ["train-00000.npy", "train-00001.npy", "train-00002.npy"]
    raw = np.concatenate([np.load(f) for f in d.train.files])
    idx = torch.tensor([2499, 0, 999, 1000, 1000, 1777, 3])  # any order, repeats, across shards
    assert torch.equal(d.train.rows(idx), torch.from_numpy(raw[idx.numpy()]).float() / 255)
    p = d.train[:]
    assert float(p.min()) >= 0 and float(p.max()) <= 1 and 0.05 < float(p.mean()) < 0.5
    assert set(torch.unique(d.val[:]).tolist()) <= {0.0, 1.0}
    fixed = d.split("train")  # the one fixed binarization used by `chainrule eval --split train`
    assert torch.equal(fixed[:10], fixed[:10]) and set(torch.unique(fixed[:10]).tolist()) <= {0.0, 1.0}
    again = pickle.loads(pickle.dumps(d.train))  # what a spawned data-loader worker receives
    assert len(pickle.dumps(d.train)) < 2000 and torch.equal(again[5:9], d.train[5:9])
    res = fit(
        NADE(784, hidden=4),
        d,
        TrainConfig(batch_size=100, max_epochs=1, progress=False, limit_train_batches=5),
        tmp_path / "run",
    )
    assert res.epochs == 1
    with pytest.raises(ChainruleError, match="already holds a dataset"):
        write_synthetic_digits(tmp_path / "syn", n_train=10)


def test_broken_array_folders_are_refused(tmp_path) -> None:
    with pytest.raises(ChainruleError, match="does not exist"):
        load_dataset(f"mmap:{tmp_path / 'nothing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChainruleError, match="meta.json is missing"):
        load_dataset(f"mmap:{tmp_path / 'empty'}")
    src = {s: SplitSource(20, 4, [np.ones((20, 4), np.uint8)]) for s in ("train", "val", "test")}
    write_array_dataset(tmp_path / "a", src, name="a", num_values=2)
    assert load_dataset(f"mmap:{tmp_path / 'a'}").dim == 4
    meta = tmp_path / "a" / "meta.json"
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "format": "zip"}))
    with pytest.raises(ChainruleError, match="not a chainrule-arrays"):
        load_dataset(f"mmap:{tmp_path / 'a'}")
    meta.write_text("{")
    with pytest.raises(ChainruleError, match="not valid JSON"):
        load_dataset(f"mmap:{tmp_path / 'a'}")
    meta.write_text(json.dumps(m))
    shard = tmp_path / "a" / "train-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ChainruleError, match="truncated"):
        load_dataset(f"mmap:{tmp_path / 'a'}")
    np.save(shard, np.ones((20, 4), np.float32))
    with pytest.raises(ChainruleError, match="uint8"):
        load_dataset(f"mmap:{tmp_path / 'a'}")
    shard.write_bytes(b"not an npy file")
    with pytest.raises(ChainruleError, match="cannot read"):
        load_dataset(f"mmap:{tmp_path / 'a'}")
    with pytest.raises(ChainruleError, match="fewer rows"):
        bad = {**src, "val": SplitSource(30, 4, [np.ones((20, 4), np.uint8)])}
        write_array_dataset(tmp_path / "b", bad, name="b", num_values=2)
    with pytest.raises(ChainruleError, match="uint8"):
        bad = {**src, "val": SplitSource(20, 4, [np.ones((20, 4))])}
        write_array_dataset(tmp_path / "c", bad, name="c", num_values=2)


def test_binarization_is_fair_and_depends_only_on_seed_epoch_example_and_pixel() -> None:
    p = torch.rand(4000, 50, generator=torch.Generator().manual_seed(0))
    idx = torch.arange(4000)
    x = binarize(p, idx, seed=0, epoch=0)
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    assert abs(float((x - p).mean())) < 0.005  # unbiased: mean of x - p is 0 (s.e. 0.0016)
    u = uniform_bits(idx, 50, 0, 0).double() / 2**24
    assert abs(float(u.mean()) - 0.5) < 0.005 and abs(float(u.var()) - 1 / 12) < 0.002
    corr = torch.corrcoef(u[:, :10].T) - torch.eye(10, dtype=torch.float64)
    assert float(corr.abs().max()) < 0.05  # neighbouring pixels independent
    perm = torch.randperm(4000)
    assert torch.equal(binarize(p[perm], idx[perm], 0, 0), x[perm])  # not the batch it sits in
    assert not torch.equal(binarize(p, idx, 0, 1), x) and not torch.equal(binarize(p, idx, 1, 0), x)
    assert torch.equal(binarize(torch.ones(3, 5), torch.arange(3), 0, 0), torch.ones(3, 5))
    assert torch.equal(binarize(torch.zeros(3, 5), torch.arange(3), 0, 0), torch.zeros(3, 5))
