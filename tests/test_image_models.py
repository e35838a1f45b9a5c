"""PixelCNN and Gated PixelCNN: exact normalisation, dependency structure (and PixelCNN's blind
spot), cached vs generic sampling, heads for 8-bit data, conditioning, persistence and errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from chainrule.distributions import DiscretizedLogisticMixture
from chainrule.errors import ChainruleError
from chainrule.masked_conv import MaskedConv2d, colour_groups
from chainrule.models import GatedPixelCNN, PixelCNN
from chainrule.persistence import load as load_model
from chainrule.persistence import save as save_model

SMALL = {
    "pixelcnn": (PixelCNN, {"channels": 6, "blocks": 2, "output_channels": 6}),
    "gated": (GatedPixelCNN, {"channels": 6, "layers": 3, "output_channels": 6}),
}


def build(kind: str, shape, seed: int = 0, **extra):
    """A small model in float64 with weights large enough that every path matters."""
    cls, kwargs = SMALL[kind]
    torch.manual_seed(seed)
    model = cls(shape, **{**kwargs, **extra}).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.4)
    return model


def all_images(dim: int, levels: int = 2) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(levels), repeat=dim)), dtype=torch.float64)


@pytest.mark.parametrize("kind", SMALL)
@pytest.mark.parametrize("shape", [[2, 2], [2, 2, 3]])
def test_probabilities_of_all_small_images_sum_to_one(kind, shape):
    model = build(kind, shape)
    total = model.log_prob(all_images(model.dim)).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("kind", SMALL)
def test_three_level_grey_images_with_a_softmax_head_sum_to_one(kind):
    model = build(kind, [2, 2], num_values=3)
    assert model.log_prob(all_images(4, 3)).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("kind", SMALL)
def test_logistic_mixture_head_over_a_small_image_sums_to_one(kind):
    model = build(kind, [1, 2], num_values=4, head="logistic", components=2)
    assert model.log_prob(all_images(2, 4)).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_discretized_logistic_mixture_sums_to_one_over_256_levels():
    torch.manual_seed(0)
    head = DiscretizedLogisticMixture(components=4, num_values=256)
    params = torch.randn(7, 12, dtype=torch.float64) * 3
    params[0, 4:8] = torch.tensor([-0.999, -0.5, 0.5, 0.999])  # means at the edges
    params[0, 8:] = -7.0  # the narrowest components
    levels = torch.arange(256, dtype=torch.float64)
    probs = head.log_prob(params[:, None, :].expand(7, 256, 12), levels.expand(7, 256)).exp()
    assert torch.allclose(probs.sum(1), torch.ones(7, dtype=torch.float64), atol=1e-12)
    assert torch.isfinite(head.log_prob(params[:, None, :].expand(7, 256, 12), levels.expand(7, 256))).all()


def test_discretized_logistic_samples_follow_its_probabilities():
    head = DiscretizedLogisticMixture(components=3, num_values=16)
    params = torch.tensor([[0.3, -0.2, 0.1, -0.6, 0.1, 0.8, -1.5, -2.0, -1.0]], dtype=torch.float64)
    draws = head.sample(params.expand(200_000, 9), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws.long(), minlength=16).double() / draws.numel()
    probs = head.log_prob(params.expand(16, 9), torch.arange(16.0, dtype=torch.float64)).exp()
    assert (freq - probs).abs().max() < 0.005


def dependencies(model, dim: int) -> torch.Tensor:
    """dep[d, e] = True iff output d's parameters change with input e (from the Jacobian)."""
    x = torch.bernoulli(
        torch.full((dim,), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )

    def params(v):
        out = model.conditioner(v[None])[0]
        return out if out.dim() == 1 else out.sum(-1)

    jac = torch.autograd.functional.jacobian(params, x)
    return jac != 0


def raster_allowed(dim: int) -> torch.Tensor:
    return torch.ones(dim, dim).tril(-1).bool()


@pytest.mark.parametrize("shape", [[5, 5], [3, 3, 3]])
def test_gated_pixelcnn_depends_on_exactly_the_earlier_sub_pixels(shape):
    model = build("gated", shape, channels=30, output_channels=60)  # wide: no unit dead at x
    dep = dependencies(model, model.dim)
    assert torch.equal(dep, raster_allowed(model.dim))


def test_pixelcnn_never_looks_ahead_and_has_a_blind_spot_up_and_right():
    model = build("pixelcnn", [9, 9], first_kernel=3, blocks=3)
    dep = dependencies(model, model.dim)
    allowed = raster_allowed(model.dim)
    assert not (dep & ~allowed).any()  # never a later pixel
    i, j = 8, 2
    d = i * 9 + j
    missing = [(e // 9, e % 9) for e in range(d) if not dep[d, e]]
    # the blind spot: pixels above and to the right that no stack of square masked kernels reaches
    assert (7, 8) in missing and (6, 8) in missing
    # inside its cone the model sees everything: the row to the left and the pixels straight above
    assert all(dep[d, i * 9 + c] for c in range(j))
    assert all(dep[d, r * 9 + j] for r in range(5, i))


@pytest.mark.parametrize("kind", SMALL)
def test_colour_order_inside_a_pixel(kind):
    model = build(kind, [2, 2, 3], channels=30, output_channels=60)
    dep = dependencies(model, model.dim)
    last = 3 * 3  # pixel (1, 1): R sees earlier pixels only, G also R, B also R and G
    assert not dep[last, last] and dep[last + 1, last] and dep[last + 2, last + 1] and dep[last + 2, last]
    assert not dep[last + 1, last + 1] and not dep[last + 1, last + 2]


@pytest.mark.parametrize("kind", SMALL)
@pytest.mark.parametrize("shape", [[4, 5], [3, 3, 3]])
def test_cached_sampler_returns_the_generic_samplers_images(kind, shape):
    model = build(kind, shape)
    fast = model.sample(6, generator=torch.Generator().manual_seed(2), method="fast")
    slow = model.sample(6, generator=torch.Generator().manual_seed(2), method="generic")
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("kind", SMALL)
def test_cached_completion_keeps_observed_pixels_and_matches_generic(kind):
    model = build(kind, [4, 4])
    given = torch.bernoulli(
        torch.full((5, 16), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(0)
    )
    mask = torch.zeros(16, dtype=torch.bool)
    mask[:8] = True  # top half observed: complete the bottom half
    mask[13] = True  # and one pixel in it
    fast = model.sample(5, given=given, mask=mask, generator=torch.Generator().manual_seed(4))
    slow = model.sample(
        5, given=given, mask=mask, generator=torch.Generator().manual_seed(4), method="generic"
    )
    assert torch.equal(fast, slow)
    assert torch.equal(fast[:, mask], given[:, mask])


def test_cached_sampling_on_mnist_sized_images_matches_generic():
    model = GatedPixelCNN([28, 28], channels=8, layers=2, output_channels=8).eval()
    fast = model.sample(2, generator=torch.Generator().manual_seed(0))
    slow = model.sample(2, generator=torch.Generator().manual_seed(0), method="generic")
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("kind", SMALL)
def test_eight_bit_heads_sample_the_same_with_both_samplers(kind):
    for head in ("categorical", "logistic"):
        model = build(kind, [3, 3], num_values=256, head=head, components=3)
        fast = model.sample(3, generator=torch.Generator().manual_seed(5))
        slow = model.sample(3, generator=torch.Generator().manual_seed(5), method="generic")
        assert torch.equal(fast, slow)
        assert fast.min() >= 0 and fast.max() <= 255 and torch.equal(fast, fast.round())


def test_class_conditional_gated_pixelcnn_is_normalised_per_class_and_samples_by_class():
    model = build("gated", [2, 2], num_classes=3)
    images = all_images(4)
    for label in range(3):
        cond = torch.full((16,), label)
        assert model.log_prob(images, cond).exp().sum().item() == pytest.approx(1.0, abs=1e-10)
    a = model.log_prob(images, torch.zeros(16, dtype=torch.long))
    b = model.log_prob(images, torch.ones(16, dtype=torch.long))
    assert not torch.allclose(a, b)  # the label matters
    cond = torch.tensor([0, 1, 2, 0])
    fast = model.sample(4, cond, generator=torch.Generator().manual_seed(1))
    slow = model.sample(4, cond, generator=torch.Generator().manual_seed(1), method="generic")
    assert torch.equal(fast, slow)


def test_vector_conditional_gated_pixelcnn():
    model = build("gated", [2, 2], cond_dim=4)
    cond = torch.randn(1, 4, dtype=torch.float64).expand(16, 4)
    assert model.log_prob(all_images(4), cond).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


def test_conditioning_errors_are_clear():
    plain = build("gated", [2, 2])
    labelled = build("gated", [2, 2], num_classes=3)
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(ChainruleError, match="unconditional"):
        plain.log_prob(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ChainruleError, match="conditional"):
        labelled.log_prob(x)
    with pytest.raises(ChainruleError, match=r"\[0, 2\]"):
        labelled.log_prob(x, torch.tensor([0, 3]))
    with pytest.raises(ChainruleError, match="class indices"):
        labelled.log_prob(x, torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("kind", SMALL)
def test_save_and_load_round_trip(tmp_path, kind):
    model = build(kind, [3, 3, 3]).float()
    x = torch.bernoulli(torch.full((4, 27), 0.5))
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert torch.allclose(model.log_prob(x), again.log_prob(x))


def test_bad_options_and_inputs_give_clear_errors():
    with pytest.raises(ChainruleError, match="image_shape"):
        PixelCNN([28])
    with pytest.raises(ChainruleError, match="unknown image head"):
        GatedPixelCNN([4, 4], head="gaussian")
    with pytest.raises(ChainruleError, match="odd"):
        GatedPixelCNN([4, 4], kernel=2)
    model = build("pixelcnn", [2, 2])
    with pytest.raises(ChainruleError, match="binary"):
        model.log_prob(torch.full((1, 4), 0.5, dtype=torch.float64))
    with pytest.raises(ChainruleError, match="shape"):
        model.log_prob(torch.zeros(1, 5, dtype=torch.float64))


def test_masks_follow_colour_groups():
    assert colour_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert colour_groups(6, 3, repeat=2).tolist() == [0, 1, 2, 0, 1, 2]
    conv = MaskedConv2d(3, 6, 3, "A", colours=3)
    centre = conv.mask[:, :, 1, 1]
    assert centre.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]
    assert conv.mask[:, :, 2].sum() == 0 and conv.mask[:, :, 1, 2].sum() == 0
    assert conv.mask[:, :, 0].sum() == 6 * 3 * 3 and math.isclose(float(conv.mask[:, :, 1, 0].sum()), 18)


def test_class_conditional_training_uses_each_examples_label(tmp_path):
    from chainrule.data import load_dataset
    from chainrule.evaluation import evaluate_nll, split_condition
    from chainrule.training import TrainConfig, fit

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = GatedPixelCNN([8, 8], channels=8, layers=2, output_channels=8, num_classes=10)
    config = TrainConfig(batch_size=64, max_epochs=3, lr=0.01, progress=False, seed=0)
    fit(model, data, config, tmp_path / "run")
    labels = split_condition(model, data, "test")
    right = evaluate_nll(model, data.test, cond=labels).nll_nats
    wrong = evaluate_nll(model, data.test, cond=(labels + 1) % 10).nll_nats
    assert right < wrong - 1.0  # it learned to use the label it was given


@pytest.mark.parametrize("kind", SMALL)
def test_greedy_decoding_within_a_window_picks_the_most_likely_allowed_value(kind):
    """`decode` with PixelDefend's rule: each sub-pixel becomes the most likely value within ±1
    of the original, given the values chosen before it; fast and generic walks agree."""
    model = build(kind, [3, 3], num_values=8, head="logistic", components=2)
    x = torch.randint(0, 8, (4, 9), generator=torch.Generator().manual_seed(0)).double()

    def choose(params, d):
        logp = model.head.log_prob_all(params)
        levels = torch.arange(8, dtype=torch.float64)
        allowed = (levels[None] - x[:, d : d + 1]).abs() <= 1
        return logp.masked_fill(~allowed, -torch.inf).argmax(-1).double()

    fast = model.decode(4, choose)
    slow = model.decode(4, choose, method="generic")
    assert torch.equal(fast, slow)
    assert ((fast - x).abs() <= 1).all()
    # each chosen value maximises its conditional given the chosen prefix
    terms = model.head.log_prob_all(model.conditioner(fast))  # (4, 9, 8)
    for d in range(9):
        allowed = (torch.arange(8.0)[None] - x[:, d : d + 1]).abs() <= 1
        best = terms[:, d].masked_fill(~allowed, -torch.inf).argmax(-1)
        assert torch.equal(best.double(), fast[:, d])


def test_super_resolution_model_is_normalised_for_each_low_resolution_image():
    model = build("gated", [2, 4], lowres_factor=2)  # low resolution: 1 x 2
    images = all_images(8)
    for low in ([0.0, 0.0], [1.0, 0.0], [1.0, 1.0]):
        cond = torch.tensor([low], dtype=torch.float64).expand(len(images), 2)
        assert model.log_prob(images, cond).exp().sum().item() == pytest.approx(1.0, abs=1e-10)
    # without cond, log_prob scores p(x | downsample(x)): the block means, rounded
    x = torch.tensor([[1, 1, 0, 0, 1, 1, 0, 1]], dtype=torch.float64)
    assert model.condition_from(x).tolist() == [[1.0, 0.0]]  # means 1.0 and 0.25 (row-major 2x2 blocks)
    assert torch.allclose(model.log_prob(x), model.log_prob(x, model.condition_from(x)))


def test_super_resolution_sampling_is_cached_exactly_and_keeps_causality():
    model = build("gated", [4, 4], lowres_factor=2, channels=30, output_channels=60)
    low = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64).expand(3, 4)
    fast = model.sample(3, low, generator=torch.Generator().manual_seed(0))
    slow = model.sample(3, low, generator=torch.Generator().manual_seed(0), method="generic")
    assert torch.equal(fast, slow)
    fixed = low[:1]
    x = torch.bernoulli(
        torch.full((16,), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    jac = torch.autograd.functional.jacobian(lambda v: model.conditioner(v[None], fixed)[0], x)
    assert torch.equal(jac != 0, raster_allowed(16))
    with pytest.raises(ChainruleError, match="low-resolution"):
        model.sample(2)
    with pytest.raises(ChainruleError, match="2x2"):
        model.log_prob(torch.zeros(2, 16, dtype=torch.float64), torch.zeros(2, 9, dtype=torch.float64))


@pytest.mark.parametrize("kind", SMALL)
def test_feature_maps_are_channels_last_and_the_layout_leaves_log_prob_unchanged(kind, monkeypatch):
    """oneDNN's convolutions run natively on channels-last maps (chainrule.memory_format); a grey
    image is both layouts at once, so without the models' requests the maps stay (N, C, H, W).
    The layout is speed only."""
    import chainrule.models.gated_pixelcnn as gated_module
    import chainrule.models.pixelcnn as pixelcnn_module

    model = build(kind, [6, 5], num_values=4)
    x = torch.randint(0, 4, (3, model.dim)).double()
    layouts: list[bool] = []
    for conv in model.modules():
        if isinstance(conv, torch.nn.Conv2d) and conv.in_channels > 1:
            conv.register_forward_pre_hook(
                lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
            )
    channels_last = model.log_prob(x)
    assert layouts and all(layouts)
    layouts.clear()
    for module in (gated_module, pixelcnn_module):
        monkeypatch.setattr(module, "channels_last", lambda t: t.contiguous())
    assert torch.allclose(model.log_prob(x), channels_last, rtol=0, atol=1e-10)
    assert not all(layouts)
