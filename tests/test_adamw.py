"""`train.optimizer: adamw`: weight decay decoupled from the Adam update, applied to matrices and
embeddings only, kept so across a resume, and training with it lowers the NLL."""

from __future__ import annotations

import torch

from chainrule.data import load_dataset
from chainrule.evaluation import evaluate_nll
from chainrule.models import NADE
from chainrule.training import TrainConfig, fit, make_optimizer
from chainrule.training.schedules import apply_hyperparameters


def params() -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [
        torch.nn.Parameter(torch.randn(4, 3, generator=g)),
        torch.nn.Parameter(torch.randn(4, generator=g)),
    ]


def test_a_step_without_gradient_only_shrinks_the_matrices() -> None:
    """Zero gradient: the Adam update is 0, so the step is the decay alone, w <- w (1 - lr wd) for
    matrices and nothing for vectors (biases, normalisation gains)."""
    matrix, vector = params()
    before = [matrix.detach().clone(), vector.detach().clone()]
    opt = make_optimizer([matrix, vector], TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.5).check())
    assert isinstance(opt, torch.optim.AdamW)
    matrix.grad, vector.grad = torch.zeros_like(matrix), torch.zeros_like(vector)
    opt.step()
    torch.testing.assert_close(matrix.detach(), before[0] * (1 - 0.1 * 0.5))
    torch.testing.assert_close(vector.detach(), before[1], rtol=0, atol=0)


def test_the_decay_is_not_in_the_gradient_as_adams_l2_is() -> None:
    """Same gradient, same weight decay: Adam's L2 term goes through the update's normalisation,
    AdamW's does not (its step is the plain Adam step plus the shrink)."""
    (m1, _), (m2, _), (m3, _) = params(), params(), params()
    grad = torch.full_like(m1, 0.01)
    cfg = {"lr": 0.1, "weight_decay": 0.5}
    steps, start = [], m1.detach().clone()
    for m, opt_name, wd in [(m1, "adamw", 0.5), (m2, "adam", 0.5), (m3, "adam", 0.0)]:
        opt = make_optimizer([m], TrainConfig(optimizer=opt_name, **{**cfg, "weight_decay": wd}).check())
        w = m.detach().clone()
        m.grad = grad.clone()
        opt.step()
        steps.append(m.detach() - w)
    adamw, adam_l2, plain = steps
    torch.testing.assert_close(adamw, plain - 0.1 * 0.5 * start)
    assert not torch.allclose(adam_l2, adamw)


def test_a_resume_keeps_vectors_undecayed() -> None:
    """`apply_hyperparameters` (run after a checkpoint's optimizer state is loaded) sets the new
    weight decay on the decaying group only."""
    opt = make_optimizer(params(), TrainConfig(optimizer="adamw", weight_decay=0.1).check())
    apply_hyperparameters(opt, TrainConfig(optimizer="adamw", weight_decay=0.3).check(), scheduled=False)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.3]
    assert all(g["weight_decay"] == (0.3 if g["decays"] else 0.0) for g in opt.param_groups)


def test_a_tiny_training_with_adamw_lowers_the_nll(tmp_path) -> None:
    data = load_dataset("bars-3")
    torch.manual_seed(0)
    model = NADE(9, hidden=16)
    before = evaluate_nll(model, data.test).nll_nats
    cfg = TrainConfig(
        optimizer="adamw", weight_decay=0.1, lr=0.02, batch_size=32, max_epochs=6, progress=False
    )
    fit(model, data, cfg, tmp_path / "run")
    assert evaluate_nll(model, data.test).nll_nats < before - 0.5
