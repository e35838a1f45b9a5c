"""Distributed data parallel on CPU (gloo): 2 processes give the 1-process run, exactly enough.

Both runs use the same recipe (seed, global batch 64, 2 epochs on the 8x8 digits): the 2-process
run is launched by Lightning from `chainrule train --devices 2`, each process taking 32 examples
of every global minibatch; the 1-process run is `chainrule.fit` in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import chainrule
from chainrule.checkpoint_io import read_checkpoint
from chainrule.data.loading import eval_loader, train_loader
from chainrule.errors import ChainruleError
from chainrule.recipes import build_from_recipe, load_recipe
from chainrule.report import read_epoch_metrics
from chainrule.training import fit

SRC = Path(chainrule.__file__).resolve().parents[1]
RECIPE = (
    "model: {name: nade, hidden: 8}\n"
    "data: {name: digits}\n"
    "train: {batch_size: 64, max_epochs: 2, lr: 0.01, patience: 100, progress: false, seed: 5}\n"
)


def val_nll(run: Path) -> dict[int, float]:
    return {
        int(r["epoch"]): float(r["val_nll"]) for r in read_epoch_metrics(run / "logs") if r.get("val_nll")
    }


def test_two_processes_equal_one_process(tmp_path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ddp = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", "train", str(recipe), "--out", str(tmp_path / "ddp")]
        + ["--devices", "2", "--no-test"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "distributed: 2 processes on 1 node(s), backend gloo" in ddp.stderr
    assert ddp.stdout.count("best_val_nll") == 1  # only rank 0 reports
    model, data, config = build_from_recipe(load_recipe(recipe))
    fit(model, data, config, tmp_path / "one")

    one = read_checkpoint(tmp_path / "one" / "checkpoints" / "last.ckpt")
    two = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert one["global_step"] == two["global_step"] == 2 * (1257 // 64)
    diff = max(float((one["state_dict"][k] - two["state_dict"][k]).abs().max()) for k in one["state_dict"])
    print(f"max |parameter difference| 1 vs 2 processes: {diff:.3g}")
    assert diff <= 1e-6
    nll1, nll2 = val_nll(tmp_path / "one"), val_nll(tmp_path / "ddp")
    print(f"validation NLL per epoch: 1 process {nll1}, 2 processes {nll2}")
    assert nll1.keys() == nll2.keys() == {0, 1}
    for e in nll1:
        assert nll2[e] == pytest.approx(nll1[e], abs=1e-5)


def test_shards_cover_every_example_once() -> None:
    """Training: the W shards of each global batch are the 1-process batch. Validation: no padding,
    each example once, even when the split does not divide evenly."""
    x = torch.arange(103, dtype=torch.float32)[:, None]
    single = [idx.tolist() for _, idx in train_loader(x, 8, seed=1)]
    for world in (2, 4):
        loaders = [train_loader(x, 8, world_size=world, rank=r, seed=1) for r in range(world)]
        for loader in loaders:
            loader.sampler.set_epoch(0)
        shards = list(zip(*[[idx.tolist() for _, idx in loader] for loader in loaders]))
        assert len(shards) == len(single) == 103 // 8
        for batch, parts in zip(single, shards):
            assert sorted(batch) == sorted(i for p in parts for i in p)
    for world in (1, 2, 3, 4):
        seen = [
            int(i)
            for r in range(world)
            for _, idx in eval_loader(x, 10, world_size=world, rank=r)
            for i in idx
        ]
        assert sorted(seen) == list(range(103))
    a, b = train_loader(x, 8, seed=1), train_loader(x, 8, seed=1)
    b.sampler.set_epoch(1)
    assert [i.tolist() for _, i in a] != [i.tolist() for _, i in b]  # a new order every epoch


def test_global_batch_must_divide_among_processes() -> None:
    with pytest.raises(ChainruleError, match="multiple of the number of processes"):
        train_loader(torch.zeros(100, 3), 30, world_size=4, rank=0)


def test_shard_sampler_is_torchs_distributed_sampler() -> None:
    from torch.utils.data import DistributedSampler

    from chainrule.data.loading import ShardSampler

    data = list(range(1001))
    for world in (1, 2, 3):
        for rank in range(world):
            ours = ShardSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=4, drop_last=True)
            ref = DistributedSampler(
                data, num_replicas=world, rank=rank, shuffle=True, seed=4, drop_last=True
            )
            for epoch in (0, 3):
                ours.set_epoch(epoch)
                ref.set_epoch(epoch)
                assert list(ours) == list(ref) and len(ours) == len(ref)
