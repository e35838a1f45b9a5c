"""Deep order-agnostic NADE (`deep-nade`, `deep-rnade`): every ordering is an exact density (sums
to 1 by enumeration, integrates to 1 on a grid), the ensemble averages probabilities, outputs
depend only on earlier dimensions, the training estimate is unbiased for the mean over
orderings, and completion draws from the observed-first conditional it declares."""

# The contract suite (tests/contract) checks both registered names' tiny_config(); here: the rest.

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import DeepNADE, DeepRNADE, build_model
from tests.conftest import all_binary, randomize


def binary_model(dim: int = 5, orderings: int = 4, layers: int = 2) -> DeepNADE:
    model = DeepNADE(dim, hidden=7, layers=layers, num_orderings=orderings, seed=3).double()
    return randomize(model, std=0.8, seed=1)


def continuous_model(orderings: int = 3) -> DeepRNADE:
    model = DeepRNADE(2, hidden=6, layers=2, num_orderings=orderings, components=3, min_scale=0.05, seed=2)
    model = randomize(model.double(), std=0.5, seed=4)
    return model


def ordering_log_prob(model: DeepNADE, x: torch.Tensor, order) -> torch.Tensor:
    return model.ordering_terms(x, torch.as_tensor(order)).sum(1)


@pytest.mark.parametrize("layers", [1, 2])
def test_every_ordering_and_every_ensemble_sums_to_one(layers: int) -> None:
    model = binary_model(layers=layers)
    x = all_binary(5)
    with torch.no_grad():
        for m in range(model.num_orderings):
            assert ordering_log_prob(model, x, model.orderings[m]).exp().sum().item() == pytest.approx(
                1, abs=1e-10
            )
            assert model.log_prob(x, num_orderings=m + 1).exp().sum().item() == pytest.approx(1, abs=1e-10)
        reversed_order = list(range(5))[::-1]  # any ordering, not only the stored ones
        assert ordering_log_prob(model, x, reversed_order).exp().sum().item() == pytest.approx(1, abs=1e-10)


def test_ensemble_is_the_mean_of_the_orderings_probabilities() -> None:
    model = binary_model()
    x = all_binary(5)
    with torch.no_grad():
        per = torch.stack([ordering_log_prob(model, x, o).exp() for o in model.orderings])
        assert torch.allclose(model.log_prob(x).exp(), per.mean(0), atol=1e-12)
        assert len({tuple(o.tolist()) for o in model.orderings}) == model.num_orderings


def test_orderings_are_random_unless_the_natural_one_is_asked_first() -> None:
    """Training draws random orderings, so the evaluated ones are random too; `natural_first`
    keeps the first one natural (files saved before the option, such as zoo/deep-rnade-wine-*)."""
    natural = list(range(30))
    assert all(o.tolist() != natural for o in DeepNADE(30, hidden=3, num_orderings=4).orderings)
    first = DeepNADE(30, hidden=3, num_orderings=4, natural_first=True).orderings
    assert first[0].tolist() == natural and first[1].tolist() != natural
    assert DeepRNADE(3, hidden=3, num_orderings=2, natural_first=True).orderings[0].tolist() == [0, 1, 2]


def test_warm_start_takes_the_weights_and_keeps_its_own_orderings() -> None:
    old = binary_model()
    new = DeepNADE(5, hidden=7, num_orderings=4, natural_first=True).double()
    new.load_state_dict(new.warm_start_state(old.state_dict()))
    assert new.orderings[0].tolist() == list(range(5))
    assert torch.equal(new.layers[0].weight, old.layers[0].weight)


@pytest.mark.parametrize("observed", [False, True])
def test_running_first_layer_equals_a_full_pass_per_position(observed: bool) -> None:
    """`ordering_terms` adds one first-layer column per position; a full network pass per
    position (`params_given`) gives the same terms, also when only `within` dims count."""
    model = binary_model(dim=6, orderings=2)
    order = model.orderings[1]
    x = all_binary(6)[::5]
    within = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.6 if observed else None
    with torch.no_grad():
        terms = model.ordering_terms(x, order, within)
        for t, d in enumerate(order.tolist()):
            known = torch.zeros(x.shape, dtype=torch.bool)
            known[:, order[:t]] = True
            if within is not None:
                known &= within
            want = model.head.log_prob(model.params_given(x, known)[:, d], x[:, d])
            if within is not None:
                want = want * within[:, d]
            assert torch.allclose(terms[:, t], want, atol=1e-12)


def test_continuous_orderings_and_ensemble_integrate_to_one() -> None:
    model = continuous_model()
    t = torch.linspace(-12, 12, 801, dtype=torch.float64)
    h = float(t[1] - t[0])
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    grid = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        assert float(model.log_prob(grid).exp().sum() * h * h) == pytest.approx(1, abs=2e-3)
        for order in ([0, 1], [1, 0]):
            assert float(ordering_log_prob(model, grid, order).exp().sum() * h * h) == pytest.approx(
                1, abs=2e-3
            )


def test_deep_nade_with_a_mixture_head_is_continuous() -> None:
    model = build_model("deep-nade", dim=3, hidden=4, head="gaussian-mixture", components=2)
    assert model.value_type == "continuous" and model.num_values == 0
    assert build_model("deep-nade", dim=3, hidden=4).value_type == "binary"
    with pytest.raises(ChainruleError, match="head must be one of"):
        build_model("deep-nade", dim=3, head="gaussian")
    with pytest.raises(ChainruleError, match="num_orderings"):
        build_model("deep-nade", dim=3, num_orderings=0)
    with pytest.raises(ChainruleError, match="num_orderings must be in"):
        model.log_prob(torch.zeros(2, 3), num_orderings=17)


@pytest.mark.parametrize("seed", [0, 1])
def test_terms_of_an_ordering_depend_only_on_earlier_dimensions(seed: int) -> None:
    """d term_t / d x_j = 0 unless j is at or before position t; the conditioner (first ordering)
    does not read its own dimension either."""
    model = binary_model(dim=6, orderings=3)
    order = model.orderings[1 + seed]
    pos = {int(d): t for t, d in enumerate(order)}
    x = torch.rand(6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    jac = torch.autograd.functional.jacobian(lambda v: model.ordering_terms(v[None], order)[0], x).abs()
    allowed = torch.tensor([[pos[j] <= t for j in range(6)] for t in range(6)])
    assert (jac[~allowed] == 0).all()
    assert (jac[allowed] > 0).float().mean() > 0.6  # a ReLU unit can be off at x
    cjac = torch.autograd.functional.jacobian(lambda v: model.conditioner(v[None])[0], x).abs()
    first = {int(d): t for t, d in enumerate(model.orderings[0])}
    strict = torch.tensor([[first[j] < first[i] for j in range(6)] for i in range(6)])
    assert (cjac[~strict] == 0).all() and (cjac[strict] > 0).all()


def test_image_shape_is_declared_saved_and_checked(tmp_path) -> None:
    """Binary images keep their shape (pictures of samples and completions) through save and load;
    a shape that does not hold `dim` values is refused."""
    from chainrule.persistence import load, save

    model = DeepNADE(6, hidden=4, num_orderings=2, image_shape=[2, 3])
    save(model, tmp_path / "m")
    assert model.image_shape == (2, 3) and load(tmp_path / "m").image_shape == (2, 3)
    assert DeepRNADE(2).image_shape is None
    with pytest.raises(ChainruleError, match="image_shape"):
        DeepNADE(6, hidden=4, image_shape=[2, 2])


def test_single_ordering_declares_its_order() -> None:
    assert DeepNADE(4, hidden=3, num_orderings=1, natural_first=True).sampling_order() == [0, 1, 2, 3]
    assert sorted(DeepNADE(4, hidden=3, num_orderings=1).sampling_order()) == [0, 1, 2, 3]
    assert DeepNADE(4, hidden=3, num_orderings=2).sampling_order() is None


def test_training_estimate_is_unbiased_for_the_mean_over_all_orderings() -> None:
    """E[D/(D-d) sum of the unknown dims' log-conditionals] = mean over all D! orderings of log p_o(x)."""
    model = binary_model(dim=3, orderings=2, layers=1)
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        exact = torch.stack([ordering_log_prob(model, x, o) for o in itertools.permutations(range(3))]).mean()
        torch.manual_seed(0)
        draws = model.training_log_prob(x.expand(200_000, -1))
    se = float(draws.std()) / math.sqrt(len(draws))
    assert abs(float(draws.mean() - exact)) < 4 * se
    assert draws.requires_grad is False


def test_completion_draws_from_the_observed_first_conditional() -> None:
    """Dimensions 1 and 3 observed: each ordering m is walked with them first, and picked with
    probability proportional to p_m(x_obs); the sample frequencies of the two unobserved binary
    dimensions match that mixture of conditionals, and fast and generic walks agree."""
    model = binary_model(dim=4, orderings=3)
    obs = torch.tensor([False, True, False, True])
    given = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    configs = given.repeat(4, 1)
    configs[:, [0, 2]] = all_binary(2)
    with torch.no_grad():
        mix = torch.zeros(4, dtype=torch.float64)
        weights = []
        for order in model.orderings.tolist():
            first = [d for d in order if obs[d]] + [d for d in order if not obs[d]]
            joint = ordering_log_prob(model, configs, first).exp()
            weights.append(joint.sum())
            mix += joint
        mix /= sum(weights)
        n = 20000
        g = torch.Generator().manual_seed(5)
        out = model.sample(n, given=given.expand(n, -1), mask=obs, generator=g)
        g = torch.Generator().manual_seed(5)
        generic = model.sample(n, given=given.expand(n, -1), mask=obs, generator=g, method="generic")
    assert torch.equal(out, generic)
    assert (out[:, [1, 3]] == given[[1, 3]]).all()
    freq = torch.bincount((out[:, 0] * 2 + out[:, 2]).long(), minlength=4).double() / n
    assert torch.allclose(freq, mix, atol=0.015)


def test_samples_follow_the_ensemble() -> None:
    """Unconditional samples (an ordering per example) match the ensemble's probabilities."""
    model = binary_model(dim=3, orderings=3)
    n = 30000
    with torch.no_grad():
        probs = model.log_prob(all_binary(3)).exp()
        out = model.sample(n, generator=torch.Generator().manual_seed(0))
    freq = (
        torch.bincount((out @ torch.tensor([4.0, 2.0, 1.0], dtype=out.dtype)).long(), minlength=8).double()
        / n
    )
    assert torch.allclose(freq, probs, atol=0.012)


def test_eval_command_scores_the_ensemble_or_its_first_ordering(tmp_path, capsys) -> None:
    """`chainrule eval DIR --data faithful [--orderings 1]` gives the ensemble's or ordering 0's NLL."""
    from chainrule.cli import main
    from chainrule.data import load_dataset
    from chainrule.persistence import save

    model = DeepRNADE(2, hidden=6, components=2, num_orderings=3, seed=1)
    save(model, tmp_path / "m")
    test = load_dataset("faithful").test
    with torch.no_grad():
        want = {
            None: -model.log_prob(test).double().mean(),
            1: -model.log_prob(test, num_orderings=1).double().mean(),
        }
    for orderings, nll in want.items():
        capsys.readouterr()
        extra = [] if orderings is None else ["--orderings", str(orderings)]
        assert main(["eval", str(tmp_path / "m"), "--data", "faithful", *extra]) == 0
        assert json.loads(capsys.readouterr().out)["nll_nats"] == pytest.approx(float(nll), rel=1e-6)
