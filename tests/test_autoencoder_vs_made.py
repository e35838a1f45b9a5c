"""An autoencoder trained like MADE is not a generative model; the same network with MADE's masks
is. Shown by enumeration (exp(score) over all 2^D inputs) and by the dependency test."""

from __future__ import annotations

import pytest
import torch

from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.kl import all_configurations
from chainrule.models import MADE, MODEL_REGISTRY
from chainrule.models.autoencoder import Autoencoder, dependency_matrix

D = 8


def digit_patch() -> torch.Tensor:
    """The 8 pixels of rows 3-4, columns 2-5 of the 8x8 binary digits (training split)."""
    return load_dataset("digits").train.reshape(-1, 8, 8)[:, 3:5, 2:6].reshape(-1, D)


def train(score, params, data: torch.Tensor, steps: int = 300) -> None:
    """Maximise the mean score by Adam on minibatches of 128: MADE's training, for both networks."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(params, lr=3e-3)
    for _ in range(steps):
        batch = data[torch.randint(len(data), (128,))]
        loss = -score(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.fixture(scope="module")
def trained():
    data = digit_patch()
    torch.manual_seed(0)
    ae, made = Autoencoder(D, [32, 32]), MADE(D, [32, 32])
    train(ae.score, ae.parameters(), data)
    train(made.log_prob, made.parameters(), data)
    return data, ae, made


def test_autoencoder_copies_its_input_and_is_not_normalised(trained) -> None:
    data, ae, _ = trained
    with torch.no_grad():
        train_nll = -ae.score(data).mean().item()
        mass = ae.score(all_configurations(D, dtype=torch.float32)).exp().sum().item()
    assert train_nll < 0.1  # ~0 nats: it reconstructs, it does not model
    assert mass > 50  # the "probabilities" of the 256 inputs sum far above 1
    assert dependency_matrix(ae.conditioner, D).diagonal().all()  # output i sees x_i: a copy


def test_made_with_the_same_shape_is_normalised_and_autoregressive(trained) -> None:
    data, ae, made = trained
    assert made.num_parameters() == ae_parameters(ae)  # the same network, masked
    with torch.no_grad():
        train_nll = -made.log_prob(data).mean().item()
        mass = made.double().log_prob(all_configurations(D)).exp().sum().item()
        made.float()
    assert abs(mass - 1) < 1e-9
    assert train_nll > 3.0  # a real density cannot score the data near 0 nats
    found = dependency_matrix(made.conditioner, D)
    assert not found.triu().any()  # output i depends only on x_<i
    assert found.any()


def ae_parameters(ae: Autoencoder) -> int:
    return sum(p.numel() for p in ae.parameters())


def test_the_dependency_test_can_fail() -> None:
    """An untrained autoencoder already fails it: every output sees every input."""
    found = dependency_matrix(Autoencoder(4, [16]).conditioner, 4)
    assert found.all()


def test_autoencoder_is_not_a_registered_model() -> None:
    assert Autoencoder not in MODEL_REGISTRY.values()


def test_autoencoder_refuses_non_binary_input() -> None:
    with pytest.raises(ChainruleError):
        Autoencoder(3, 4).score(torch.tensor([[0.5, 1.0, 0.0]]))


def test_squared_error_autoencoder_copies_when_wide_and_compresses_through_a_bottleneck() -> None:
    """The notes' continuous autoencoder: wide, its reconstruction error goes to about 0 (it copies);
    one hidden unit on 2-D data learns a code along the first principal direction."""
    data = load_dataset("faithful").train
    torch.manual_seed(0)
    wide, narrow = Autoencoder(2, [32], loss="squared"), Autoencoder(2, [1], loss="squared")
    train(wide.score, wide.parameters(), data, steps=1500)
    train(narrow.score, narrow.parameters(), data, steps=1500)
    with torch.no_grad():
        assert float(-wide.score(data).mean()) < 0.02
        pc1 = torch.linalg.svd(data - data.mean(0), full_matrices=False).Vh[0]
        projection = (data - data.mean(0)) @ pc1
        code = narrow.encode(data)[:, 0]
        assert abs(float(torch.corrcoef(torch.stack([code, projection]))[0, 1])) > 0.95
        residual = float(((data - data.mean(0)) - projection[:, None] * pc1).pow(2).sum(1).mean())
        assert float(-narrow.score(data).mean()) < 1.5 * residual  # about PCA's one-component error


def test_squared_error_autoencoder_takes_real_values_refuses_nan_and_unknown_losses() -> None:
    ae = Autoencoder(3, 4, loss="squared")
    x = torch.tensor([[0.5, -1.2, 3.0]])
    with torch.no_grad():
        assert torch.allclose(ae.score(x), -((x - ae.conditioner(x)) ** 2).sum(-1))
    with pytest.raises(ChainruleError, match="finite|NaN"):
        ae.score(torch.tensor([[float("nan"), 0.0, 1.0]]))
    with pytest.raises(ChainruleError, match="unknown loss"):
        Autoencoder(3, 4, loss="l1")
