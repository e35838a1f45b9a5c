"""Training end to end: fit lowers NLL, the CLI trains/evaluates/samples, last.ckpt is the last
epoch. Killed, broken and resumed runs are in test_resilience.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from chainrule.data import load_dataset
from chainrule.evaluation import evaluate_nll
from chainrule.models import MADE, NADE
from chainrule.persistence import load
from chainrule.training import TrainConfig, fit

QUIET = TrainConfig(batch_size=64, max_epochs=8, lr=1e-2, progress=False, patience=20)


@pytest.mark.parametrize("model_cls", [NADE, MADE])
def test_fit_lowers_nll_and_writes_everything(model_cls, tmp_path) -> None:
    data = load_dataset("bars-3")
    model = model_cls(9, hidden=16) if model_cls is NADE else model_cls(9, hidden=[32], num_masks=2)
    before = evaluate_nll(model, data.test).nll_nats
    res = fit(model, data, QUIET, tmp_path / "run")
    after = evaluate_nll(model, data.test).nll_nats
    assert after < before - 0.5
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "run" / "logs" / "part0" / "metrics.csv").is_file()
    again = load(res.model_dir)
    assert torch.equal(again.log_prob(data.test), model.log_prob(data.test))
    meta = json.loads((res.model_dir / "config.json").read_text())["training"]
    assert meta["epochs"] == 8 and meta["dataset"] == "bars-3"
    assert meta["num_free_parameters"] == model.num_free_parameters() <= meta["num_parameters"]


def test_fit_refuses_to_overwrite_a_run(tmp_path) -> None:
    from chainrule.errors import ChainruleError

    data = load_dataset("bars-3")
    fit(NADE(9, hidden=4), data, TrainConfig(max_epochs=1, progress=False), tmp_path / "run")
    with pytest.raises(ChainruleError, match="--resume"):
        fit(NADE(9, hidden=4), data, TrainConfig(max_epochs=1, progress=False), tmp_path / "run")


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def write_recipe(path: Path, epochs: int, data: str = "bars-4", batch: int = 16) -> Path:
    path.write_text(
        "model: {name: nade, hidden: 16}\n"
        f"data: {{name: {data}}}\n"
        f"train: {{batch_size: {batch}, max_epochs: {epochs}, lr: 0.003, patience: 100, progress: false}}\n"
    )
    return path


def test_cli_train_eval_sample(tmp_path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", 2)
    r = cli("train", str(recipe), "--out", str(tmp_path / "run"), "model.hidden=8")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout.strip().splitlines()[-1])
    assert metrics["test"]["n"] == 450 and metrics["epochs"] == 2
    r = cli("eval", str(tmp_path / "run" / "model"), "--data", "bars-4", "--split", "test")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert {"nll_nats", "bits_per_dim", "stderr_nats", "n"} <= set(line)
    assert line["nll_nats"] == pytest.approx(metrics["test"]["nll_nats"], rel=1e-6)
    r = cli(
        "sample",
        str(tmp_path / "run" / "model"),
        "-n",
        "16",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "g.png"),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(tmp_path) -> None:
    """With lr=0 validation never improves after epoch 0; last.ckpt must still be the final state
    (a resume from it must not repeat epochs), while best.ckpt stays at epoch 0."""
    data = load_dataset("bars-3")
    cfg = TrainConfig(batch_size=64, max_epochs=4, lr=0.0, progress=False, patience=100)
    fit(NADE(9, hidden=4), data, cfg, tmp_path / "run")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    steps_per_epoch = len(data.train) // 64
    assert last["global_step"] == 4 * steps_per_epoch
    assert best["global_step"] == steps_per_epoch


def test_cli_trains_a_continuous_model_and_samples_a_csv(tmp_path) -> None:
    """RNADE on Old Faithful end to end from the shell: train, evaluate, sample to CSV."""
    import csv
    import json
    import subprocess
    import sys

    out = tmp_path / "rnade"
    cli = [sys.executable, "-m", "chainrule.cli"]
    run = subprocess.run(
        [*cli, "train", "recipes/rnade-wine-red.yaml", "data.name=faithful", "train.max_epochs=2"]
        + ["train.progress=false", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    metrics = json.loads(run.stdout.strip().splitlines()[-1])
    assert metrics["model"] == "rnade" and metrics["test"]["n"] == 28
    run = subprocess.run(
        [*cli, "sample", str(out / "model"), "-n", "5", "--out", str(tmp_path / "s.csv")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = list(csv.reader((tmp_path / "s.csv").read_text().splitlines()))
    assert rows[0] == ["x0", "x1"] and len(rows) == 6
    bad = subprocess.run(
        [*cli, "train", "recipes/nade-mnist.yaml", "data.name=faithful", "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "continuous" in bad.stderr


def test_compiled_objective_equals_eager_also_after_a_mask_change() -> None:
    """train.compile for models without their own kernels compiles `training_log_prob`."""
    from chainrule.compiling import compiled_or_eager
    from chainrule.models import FVSBN

    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((8, 9), 0.4))
    for model in [MADE(9, hidden=[16], num_masks=2), FVSBN(9)]:
        model.train()
        objective = compiled_or_eager(model.training_log_prob, static=False)  # as the trainer
        torch.testing.assert_close(objective(x), model.training_log_prob(x))
        if isinstance(model, MADE):
            model.on_train_step(1)  # masks are buffers changed in place
            torch.testing.assert_close(objective(x), model.training_log_prob(x))


def test_compiled_objective_refuses_bad_input_with_the_clear_error() -> None:
    """The input check runs inside the compiled graph (no graph break); bad values still raise
    the ChainruleError, and compilation is not given up for them."""
    import warnings

    from chainrule.compiling import compiled_or_eager
    from chainrule.errors import ChainruleError

    model = MADE(6, hidden=[5])
    objective = compiled_or_eager(model.training_log_prob, static=False)
    good = torch.bernoulli(torch.full((4, 6), 0.5))
    objective(good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ChainruleError, match="binary"):
            objective(torch.full((4, 6), 0.5))
    torch.testing.assert_close(objective(good), model.training_log_prob(good))


class Trajectory(L.Callback):
    """The parameters after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append({k: v.detach().clone() for k, v in pl_module.model.named_parameters()})


def ema_run(out: Path, decay: float, epochs: int = 1, resume: bool = False, **kw):
    torch.manual_seed(0)
    model = NADE(9, hidden=4)
    kw = {"lr": 0.05, **kw}
    cfg = TrainConfig(
        batch_size=64,
        max_epochs=epochs,
        progress=False,
        patience=100,
        limit_train_batches=5,
        ema_decay=decay,
        **kw,
    )
    path = Trajectory()
    res = fit(model, load_dataset("bars-3"), cfg, out, resume=resume, callbacks=[path])
    return res, path.steps


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_ema_decay_saves_the_moving_average_of_the_trajectory(decay, tmp_path) -> None:
    """train.ema_decay=d: saved and validated weights are a_1 = w_1, a_t = d a_(t-1) + (1 - d) w_t
    over the optimizer steps; d = 0 (the default) is the plain run: the last weights, no EMA state."""
    res, steps = ema_run(tmp_path / "run", decay)
    assert len(steps) == 5
    average = dict(steps[0])
    for w in steps[1:]:
        average = {k: decay * average[k] + (1 - decay) * w[k] for k in average}
    saved = dict(load(res.model_dir).named_parameters())
    for k, v in average.items():
        torch.testing.assert_close(saved[f"{k}"], v, rtol=0, atol=1e-6)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ("current_model_state" in ckpt) == (decay > 0)
    if decay:  # the raw weights stay in the checkpoint for a resume; the average under the usual keys
        raw = ckpt["current_model_state"]
        assert list(raw) == list(ckpt["state_dict"])
        for k, v in steps[-1].items():
            assert torch.equal(raw[f"model.{k}"], v)
            assert not torch.equal(ckpt["state_dict"][f"model.{k}"], v)


def test_ema_survives_a_resume(tmp_path) -> None:
    """1 epoch, stop, resume to 2 epochs = 2 epochs in one go: same average, same raw weights."""
    ema_run(tmp_path / "once", 0.8, epochs=2)
    ema_run(tmp_path / "twice", 0.8, epochs=1)
    _, steps = ema_run(tmp_path / "twice", 0.8, epochs=2, resume=True)
    assert len(steps) == 5  # the second part ran the second epoch only
    a, b = (torch.load(tmp_path / r / "checkpoints/last.ckpt", weights_only=True) for r in ("once", "twice"))
    assert a["global_step"] == b["global_step"] == 10
    assert int(a["averaging_state"]["n_averaged"]) == int(b["averaging_state"]["n_averaged"]) == 10
    for key in ("state_dict", "current_model_state"):
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], rtol=0, atol=1e-6)


def test_a_run_with_ema_resumed_without_it_continues_the_raw_weights(tmp_path) -> None:
    ema_run(tmp_path / "run", 0.8, epochs=1)
    raw = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["current_model_state"]
    start = Trajectory()
    start.on_train_start = lambda trainer, pl_module: start.on_train_batch_end(trainer, pl_module, 0, 0, 0)
    torch.manual_seed(0)
    cfg = TrainConfig(batch_size=64, max_epochs=2, progress=False, limit_train_batches=5)
    fit(NADE(9, hidden=4), load_dataset("bars-3"), cfg, tmp_path / "run", resume=True, callbacks=[start])
    assert all(torch.equal(raw[f"model.{k}"], v) for k, v in start.steps[0].items())


class CompiledLive(L.Callback):
    """At the end: the trained module has its compiled objective, the averaged copy has none."""

    def on_train_end(self, trainer, pl_module):
        from chainrule.training import ParameterEMA

        (ema,) = [c for c in trainer.callbacks if isinstance(c, ParameterEMA)]
        assert pl_module.objective._compiled is not None
        assert ema._average_model.module.objective._compiled is None


def test_ema_with_bf16_and_compile_saves_the_usual_keys(tmp_path) -> None:
    from safetensors import safe_open

    torch.manual_seed(0)
    model = MADE(9, hidden=[8])
    keys = set(model.state_dict())
    cfg = TrainConfig(
        batch_size=64,
        max_epochs=1,
        progress=False,
        limit_train_batches=3,
        precision="bf16-mixed",
        compile=True,
        ema_decay=0.5,
    )
    res = fit(model, load_dataset("bars-3"), cfg, tmp_path / "run", callbacks=[CompiledLive()])
    with safe_open(res.model_dir / "model.safetensors", "pt") as f:
        assert set(f.keys()) == keys
    assert torch.isfinite(load(res.model_dir).log_prob(load_dataset("bars-3").test)).all()


def test_ema_with_float64_keeps_the_average_and_the_weights_in_float64(tmp_path) -> None:
    """precision 64-true converts the module after the callbacks' setup: the average follows, so the
    update runs and a resume continues both (to float32 rounding: Lightning restores a checkpoint
    into the module before it converts it to float64, with or without the average)."""
    ema_run(tmp_path / "once", 0.8, epochs=2, precision="64-true")
    ema_run(tmp_path / "twice", 0.8, epochs=1, precision="64-true")
    ema_run(tmp_path / "twice", 0.8, epochs=2, resume=True, precision="64-true")
    a, b = (torch.load(tmp_path / r / "checkpoints/last.ckpt", weights_only=True) for r in ("once", "twice"))
    for key in ("state_dict", "current_model_state"):
        assert all(v.dtype == torch.float64 for v in a[key].values() if v.is_floating_point())
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), True, "0.9", 2])
def test_bad_ema_decay_is_refused(bad) -> None:
    from chainrule.errors import ChainruleError

    with pytest.raises(ChainruleError, match="train.ema_decay must be a number in \\[0, 1\\)"):
        TrainConfig(ema_decay=bad).check()


def test_a_validation_fraction_of_no_batch_is_refused_up_front(tmp_path) -> None:
    """bars-3 has 450 validation examples: 1 batch of 1,000; a fraction < 1 of it is no batch."""
    from chainrule.errors import ChainruleError

    cfg = TrainConfig(batch_size=64, max_epochs=1, progress=False, limit_val_batches=0.5)
    with pytest.raises(ChainruleError) as e:
        fit(NADE(9, hidden=4), load_dataset("bars-3"), cfg, tmp_path / "run")
    msg = str(e.value)
    assert "train.limit_val_batches=0.5" in msg and "450 examples" in msg and "batches of 1,000" in msg
    assert "train.limit_val_batches=1.0 or more" in msg
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training
    with pytest.raises(ChainruleError, match="limit_val_batches must be a fraction"):
        TrainConfig(limit_val_batches=0).check()


def test_compiled_sequence_chunks_equal_eager_under_bf16_autocast() -> None:
    """train.compile for sequence models compiles the training chunks' `chunk_log_prob`; under
    bf16 autocast on the CPU the compiled graph holds the written-out attention, and its NLLs
    and gradients are the eager ones up to rounding."""
    import warnings

    from chainrule.models.base import build_model
    from chainrule.training.objectives import SequenceObjective

    torch.manual_seed(0)
    model = build_model("transformer", num_values=5, d_model=16, layers=1, heads=2, block_size=8)
    model.train()
    batch = (torch.randint(0, 5, (3, 9)), True)
    results = []
    for compiled in (False, True):
        model.zero_grad()
        with warnings.catch_warnings(record=True) as caught, torch.autocast("cpu", dtype=torch.bfloat16):
            warnings.simplefilter("always")
            nll = SequenceObjective(model, compile=compiled).train_nll(batch, epoch=0)
        assert not [w for w in caught if "torch.compile failed" in str(w.message)]
        nll.mean().backward()
        results.append((nll.detach(), [p.grad.clone() for p in model.parameters()]))
    (eager, eager_grads), (comp, comp_grads) = results
    torch.testing.assert_close(comp, eager, rtol=2e-2, atol=2e-2)
    for a, b in zip(comp_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-3)
