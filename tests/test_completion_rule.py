"""The one completion rule (chainrule.validation.check_completion), across every family: unobserved
entries of `given` are ignored whatever they hold (NaN included), observed entries are validated,
and completion never changes an observed value."""

from __future__ import annotations

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import MODEL_REGISTRY, build_model
from chainrule.persistence import register_everything
from chainrule.validation import check_completion, check_finite

register_everything()  # the graphical models register when chainrule.graphical is imported
#: every registered model that completes arbitrary masks (sequence models: prefixes, below)
FAMILIES = sorted(n for n, c in MODEL_REGISTRY.items() if c.event_shape != (None,))
SEQUENCES = sorted(n for n, c in MODEL_REGISTRY.items() if c.event_shape == (None,))


def tiny(name: str):
    torch.manual_seed(0)
    return build_model(name, **MODEL_REGISTRY[name].tiny_config()).double().eval()


def given_and_mask(model, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid values everywhere, and a mask observing every other dimension."""
    d = model.event_shape[0]
    g = torch.Generator().manual_seed(1)
    if model.value_type == "continuous":
        given = torch.randn(n, d, generator=g, dtype=torch.float64)
    else:
        cards = torch.tensor(model.values_per_dimension())  # tabular variables differ in size
        given = (torch.rand(n, d, generator=g, dtype=torch.float64) * cards).floor()
    mask = torch.arange(d) % 2 == 0
    return given, mask


@pytest.mark.parametrize("name", FAMILIES)
def test_nan_in_unobserved_entries_is_ignored_and_observed_values_are_kept(name: str) -> None:
    model = tiny(name)
    given, mask = given_and_mask(model)
    holey = given.clone()
    holey[:, ~mask] = float("nan")
    out = model.sample(3, given=holey, mask=mask, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, mask], given[:, mask])
    again = model.sample(3, given=given, mask=mask.long(), generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, again)  # what the unobserved entries held made no difference


@pytest.mark.parametrize("name", FAMILIES)
def test_nan_in_an_observed_entry_is_refused(name: str) -> None:
    model = tiny(name)
    given, mask = given_and_mask(model)
    given[1, 0] = float("nan")
    with pytest.raises(ChainruleError, match="observed part"):
        model.sample(3, given=given, mask=mask)


@pytest.mark.parametrize("name", FAMILIES)
def test_per_example_masks_and_bad_masks(name: str) -> None:
    model = tiny(name)
    given, mask = given_and_mask(model)
    rows = torch.stack([mask, ~mask, mask])
    out = model.sample(3, given=given, mask=rows, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[rows], given[rows])
    with pytest.raises(ChainruleError, match="mask"):
        model.sample(3, given=given, mask=mask[:-1])
    with pytest.raises(ChainruleError, match="mask"):
        model.sample(3, given=given, mask=mask.double() * 2)
    with pytest.raises(ChainruleError, match="n=2"):
        model.sample(2, given=given, mask=mask)


@pytest.mark.parametrize("name", SEQUENCES)
def test_sequence_prefix_completion_follows_the_same_rule(name: str) -> None:
    model = tiny(name)
    given = torch.tensor([[1.0, 2.0, float("nan"), float("nan")]] * 2)
    mask = torch.tensor([True, True, False, False])
    out = model.sample(2, given=given, mask=mask, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 4) and out[:, :2].tolist() == [[1, 2], [1, 2]]
    with pytest.raises(ChainruleError, match="observed part"):
        model.sample(2, given=torch.tensor([[1.0, float("nan"), 0.0, 0.0]] * 2), mask=mask)
    with pytest.raises(ChainruleError, match="prefixes only"):
        model.sample(2, given=given.nan_to_num(), mask=~mask)


def test_check_completion_returns_zeros_for_unobserved_entries() -> None:
    given = torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]])
    mask = torch.tensor([[True, False], [False, True]])
    out, obs = check_completion(given, mask, 2, (2,), check_finite)
    assert out.tolist() == [[1.0, 0.0], [0.0, 2.0]] and torch.equal(obs, mask)
    with pytest.raises(ChainruleError, match="both"):
        check_completion(given, None, 2, (2,), check_finite)


@pytest.mark.parametrize("name", FAMILIES)
def test_unconditional_models_refuse_a_condition(name: str) -> None:
    model = tiny(name)
    given, _ = given_and_mask(model)
    with pytest.raises(ChainruleError, match="unconditional"):
        model.log_prob(given, torch.zeros(3))
    with pytest.raises(ChainruleError, match="unconditional"):
        model.sample(3, torch.zeros(3))


@pytest.mark.parametrize("name", FAMILIES)
def test_log_prob_is_the_same_in_train_and_eval_mode_with_or_without_gradients(name: str) -> None:
    model = tiny(name)
    given, _ = given_and_mask(model)
    kw = {} if model.exact_log_prob else {"k": 7}

    def score(train: bool, grad: bool) -> torch.Tensor:
        model.train(train)
        g = {} if model.exact_log_prob else {"generator": torch.Generator().manual_seed(3)}
        with torch.set_grad_enabled(grad):
            return model.log_prob(given, **kw, **g).detach()

    reference = score(False, False)
    for train in (False, True):
        for grad in (False, True):
            torch.testing.assert_close(score(train, grad), reference, rtol=1e-12, atol=1e-12)
