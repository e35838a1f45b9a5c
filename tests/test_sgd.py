"""`train.optimizer: sgd`: the update is SGD with (Nesterov) momentum and weight decay, the keys are
checked where they enter, training with it lowers the NLL, and a resume continues its momentum."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.evaluation import evaluate_nll
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit, make_optimizer


class Steps(L.Callback):
    """The model's parameters after every optimizer step, and the optimizer's hyper-parameters."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []
        self.groups: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        group = trainer.optimizers[0].param_groups[0]
        self.groups.append({k: v for k, v in group.items() if k != "params"})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append({k: v.detach().clone() for k, v in pl_module.model.named_parameters()})


def sgd_run(out: Path, epochs: int, resume: bool = False, **kw) -> tuple[NADE, Steps]:
    torch.manual_seed(0)
    model = NADE(9, hidden=4)
    kw = {"optimizer": "sgd", "lr": 0.05, "batch_size": 64, "limit_train_batches": 5, **kw}
    cfg = TrainConfig(max_epochs=epochs, progress=False, patience=100, **kw)
    steps = Steps()
    fit(model, load_dataset("bars-3"), cfg, out, resume=resume, callbacks=[steps])
    return model, steps


@pytest.mark.parametrize("nesterov", [False, True])
def test_two_trainer_steps_are_the_hand_computed_sgd_update(nesterov, tmp_path) -> None:
    """Full-batch steps through `fit`: g = grad + wd * w, v1 = g1, v2 = m v1 + g2, w <- w - lr * v
    (Nesterov: w <- w - lr * (g + m v))."""
    data = load_dataset("bars-3")
    lr, m, wd = 0.3, 0.8, 0.01
    torch.manual_seed(0)
    model = NADE(9, hidden=4)
    w = {k: v.detach().clone() for k, v in model.named_parameters()}
    cfg = TrainConfig(
        optimizer="sgd",
        lr=lr,
        momentum=m,
        nesterov=nesterov,
        weight_decay=wd,
        batch_size=len(data.train),  # one batch an epoch: its gradient does not depend on the shuffle
        max_epochs=2,
        progress=False,
    )
    steps = Steps()
    fit(model, data, cfg, tmp_path / "run", callbacks=[steps])
    hand = NADE(9, hidden=4)
    v: dict[str, torch.Tensor] = {}
    for step in range(2):
        hand.load_state_dict(w, strict=False)
        hand.zero_grad()
        (-hand.log_prob(data.train).mean()).backward()
        for k, p in hand.named_parameters():
            g = p.grad + wd * w[k]
            v[k] = g if step == 0 else m * v[k] + g
            w[k] = w[k] - lr * (g + m * v[k] if nesterov else v[k])
        for k in w:
            torch.testing.assert_close(steps.steps[step][k], w[k], rtol=1e-5, atol=1e-6)
    assert steps.groups[0]["momentum"] == m and steps.groups[0]["nesterov"] is nesterov


def test_sgd_defaults_to_momentum_09_and_adam_stays_the_default() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = make_optimizer(params, TrainConfig(optimizer="sgd").check())
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert not sgd.defaults["nesterov"]
    plain = make_optimizer(params, TrainConfig(optimizer="sgd", momentum=0, weight_decay=0.1).check())
    assert plain.defaults["momentum"] == 0 and plain.defaults["weight_decay"] == 0.1
    assert isinstance(make_optimizer(params, TrainConfig().check()), torch.optim.Adam)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"optimizer": "rmsprop"}, "train.optimizer must be one of adam, adamw, sgd, got 'rmsprop'"),
        ({"optimizer": "SGD"}, "train.optimizer must be one of adam, adamw, sgd"),
        ({"optimizer": "sgd", "momentum": 1.0}, r"train.momentum must be a number in \[0, 1\)"),
        ({"optimizer": "sgd", "momentum": -0.1}, r"train.momentum must be a number in \[0, 1\)"),
        ({"optimizer": "sgd", "momentum": float("nan")}, "train.momentum must be"),
        ({"optimizer": "sgd", "momentum": "0.9"}, "train.momentum must be"),
        (
            {"optimizer": "sgd", "momentum": 0, "nesterov": True},
            "train.nesterov=true needs train.momentum > 0",
        ),
        ({"optimizer": "sgd", "nesterov": "yes"}, "train.nesterov must be true or false"),
        ({"momentum": 0.9}, "train.momentum applies to train.optimizer=sgd only"),
        ({"nesterov": True}, "train.nesterov applies to train.optimizer=sgd only"),
    ],
)
def test_bad_optimizer_keys_are_refused_naming_the_key(keys, message) -> None:
    with pytest.raises(ChainruleError, match=message):
        TrainConfig(**keys).check()


def test_nesterov_with_the_default_momentum_is_valid() -> None:
    TrainConfig(optimizer="sgd", nesterov=True).check()


def test_a_tiny_training_with_sgd_lowers_the_nll(tmp_path) -> None:
    data = load_dataset("bars-3")
    torch.manual_seed(0)
    model = NADE(9, hidden=16)
    before = evaluate_nll(model, data.test).nll_nats
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=32, max_epochs=6, progress=False, patience=20)
    fit(model, data, cfg, tmp_path / "run")
    assert evaluate_nll(model, data.test).nll_nats < before - 0.5


def test_a_resumed_sgd_run_continues_its_momentum(tmp_path) -> None:
    """1 epoch, stop, resume to 2 = 2 epochs in one go (a fresh momentum buffer would differ)."""
    once, _ = sgd_run(tmp_path / "once", 2)
    sgd_run(tmp_path / "twice", 1)
    twice, steps = sgd_run(tmp_path / "twice", 2, resume=True)
    assert len(steps.steps) == 5
    ckpt = torch.load(tmp_path / "twice" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all("momentum_buffer" in s for s in ckpt["optimizer_states"][0]["state"].values())
    for (k, a), b in zip(once.state_dict().items(), twice.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)


def test_a_resume_takes_the_new_lr_and_momentum(tmp_path) -> None:
    """Loading the optimizer state restores its saved hyper-parameters; the run's own win."""
    sgd_run(tmp_path / "run", 1)
    _, steps = sgd_run(tmp_path / "run", 2, resume=True, lr=0.001, momentum=0.5, weight_decay=0.1)
    assert {k: steps.groups[0][k] for k in ("lr", "momentum", "weight_decay")} == {
        "lr": 0.001,
        "momentum": 0.5,
        "weight_decay": 0.1,
    }


def test_a_resume_with_another_optimizer_is_refused(tmp_path) -> None:
    sgd_run(tmp_path / "run", 1, optimizer="adam")
    with pytest.raises(ChainruleError, match=r'train.optimizer \("adam" -> "sgd"\)'):
        sgd_run(tmp_path / "run", 2, resume=True)


def test_a_run_recorded_before_train_optimizer_resumes_as_adam(tmp_path) -> None:
    sgd_run(tmp_path / "run", 1, optimizer="adam")
    record = tmp_path / "run" / "run.json"
    saved = json.loads(record.read_text())
    del saved["train"]["optimizer"]
    record.write_text(json.dumps(saved))
    _, steps = sgd_run(tmp_path / "run", 2, resume=True, optimizer="adam")
    assert len(steps.steps) == 5


def test_the_cli_refuses_an_unknown_optimizer_in_one_line(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule.cli",
            "train",
            "recipes/nade-mnist.yaml",
            "train.optimizer=rmsprop",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip() == "chainrule: error: train.optimizer must be one of adam, adamw, sgd, got 'rmsprop'"
    )
