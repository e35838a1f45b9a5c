"""PixelRNN (Row LSTM, Diagonal BiLSTM): exact normalisation, receptive fields from gradients,
fast sampler == generic sampler, persistence and option errors. float64, tiny images."""

from __future__ import annotations

import itertools

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import DiagonalBiLSTM, RowLSTM, build_model
from chainrule.models.diagonal_bilstm import diagonal_chunks, diagonal_order
from chainrule.persistence import load, save

MODELS = {"row-lstm": RowLSTM, "diagonal-bilstm": DiagonalBiLSTM}
SMALL = dict(channels=6, layers=2, output_channels=6)


def make(name: str, image_shape, seed: int = 0, **kwargs) -> RowLSTM | DiagonalBiLSTM:
    torch.manual_seed(seed)
    return MODELS[name](image_shape, **{**SMALL, **kwargs}).double().eval()


def every_image(dim: int, levels: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(levels), repeat=dim)), dtype=torch.float64)


# -- normalisation by enumeration -------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("shape", "levels", "head"),
    [([2, 2], 2, "auto"), ([2, 2, 3], 2, "auto"), ([2, 2], 3, "categorical"), ([1, 2, 3], 3, "logistic")],
)
def test_probabilities_of_every_image_sum_to_one(name, shape, levels, head) -> None:
    model = make(name, shape, num_values=levels, head=head, components=2)
    x = every_image(model.dim, levels)  # 2x2x3 binary: 4096 images
    assert model.log_prob(x).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


# -- receptive fields from gradients -----------------------------------------------------------------
def dependencies(name: str, shape, seeds: int = 3, **kwargs) -> torch.Tensor:
    """(D, D) bool: output sub-pixel d has a non-zero gradient w.r.t. input sub-pixel e, for at
    least one of `seeds` random models at random inputs (several, so that a ReLU that happens to be
    off everywhere in one small network hides no path). Row d of the Jacobian comes from example d
    of a batch of D copies of the input: examples never interact, so one backward pass gives all."""
    deps = None
    for seed in range(seeds):
        model = make(name, shape, seed=seed, **{"channels": 12, "output_channels": 24, **kwargs})
        x = torch.rand(1, model.dim, dtype=torch.float64).repeat(model.dim, 1).requires_grad_()
        out = model.conditioner(x).reshape(model.dim, model.dim, -1)
        mix = torch.rand(out.shape[-1], dtype=torch.float64)  # params of a sub-pixel, randomly mixed
        (out.diagonal().T @ mix).sum().backward()
        found = x.grad != 0
        deps = found if deps is None else deps | found
    return deps


def raster_allowed(dim: int) -> torch.Tensor:
    """Sub-pixel d may depend on exactly the sub-pixels before it in raster-and-colour order."""
    return torch.ones(dim, dim, dtype=torch.bool).tril(-1)


def row_lstm_field(height: int, width: int, layers: int, k: int) -> dict[tuple[int, int], set]:
    """Pixels seen by a Row LSTM's output at each pixel: the first layer's half-window k (rows i-k..i-1
    within k columns; k pixels to the left in row i), then per layer the hidden state at (i, j), which
    sees the layer input at (i, j - 1) and (i, j) and the states at (i - 1, j - 1 .. j + 1)."""
    pixels = [(a, b) for a in range(height) for b in range(width)]

    def first(a: int, b: int) -> set:
        above = {(a2, b2) for a2 in range(a - k, a) for b2 in range(b - k, b + k + 1)}
        return {p for p in above | {(a, b2) for b2 in range(b - k, b)} if p in pixels}

    field = {p: first(*p) for p in pixels}
    for _ in range(layers):
        hidden: dict[tuple[int, int], set] = {}
        for a, b in pixels:
            seen = field[a, b] | field.get((a, b - 1), set())
            for b2 in (b - 1, b, b + 1):
                seen |= hidden.get((a - 1, b2), set())
            hidden[a, b] = seen
        field = {p: field[p] | hidden[p] for p in pixels}
    return field


def expected_row_lstm(height: int, width: int, colours: int, layers: int, k: int) -> torch.Tensor:
    """Sub-pixel dependencies of the Row LSTM: every colour of the field's pixels, and the earlier
    colours of the pixel itself."""
    field = row_lstm_field(height, width, layers, k)
    deps = torch.zeros(height * width * colours, height * width * colours, dtype=torch.bool)
    for (a, b), seen in field.items():
        for c in range(colours):
            d = (a * width + b) * colours + c
            for a2, b2 in seen:
                deps[d, (a2 * width + b2) * colours : (a2 * width + b2 + 1) * colours] = True
            deps[d, d - c : d] = True
    return deps


@pytest.mark.parametrize(("shape", "layers"), [([5, 5], 2), ([3, 3, 3], 2), ([4, 6, 2], 1), ([3, 9], 1)])
def test_diagonal_bilstm_sees_exactly_every_earlier_subpixel(shape, layers) -> None:
    """No blind spot. [3, 9] (wider than the 7 x 7 input window reaches) needs the first layer's
    right-to-left direction to read the image: pixel (i, 0) must see (i - 1, 8)."""
    deps = dependencies("diagonal-bilstm", shape, layers=layers)
    assert torch.equal(deps, raster_allowed(deps.shape[0]))


@pytest.mark.parametrize(
    ("shape", "first_kernel", "layers"), [([5, 5], 3, 2), ([4, 10], 7, 1), ([3, 5, 3], 3, 1)]
)
def test_row_lstm_sees_its_triangle_and_nothing_forbidden(shape, first_kernel, layers) -> None:
    deps = dependencies("row-lstm", shape, first_kernel=first_kernel, layers=layers)
    allowed = raster_allowed(deps.shape[0])
    assert not (deps & ~allowed).any()  # never a later sub-pixel (or a later colour of the pixel)
    h, w, c = (*shape, 1)[:3]
    assert torch.equal(deps, expected_row_lstm(h, w, c, layers, first_kernel // 2))
    missing = allowed & ~deps
    assert missing.any()  # the documented triangle: allowed pixels it never sees


def test_row_lstm_triangle_example() -> None:
    """5 x 5, 3 x 3 input layer, 1 layer: what pixel (4, 0) sees is a triangle widening upwards; the
    rest of rows 1-3 (to the right) is allowed by the raster order but never seen."""
    field = row_lstm_field(5, 5, layers=1, k=1)
    seen = [[int((a, b) in field[4, 0]) for b in range(5)] for a in range(5)]
    assert seen == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]


def test_diagonal_order_walks_the_anti_diagonals() -> None:
    """3 x 4: pixels (row-major indices) in anti-diagonal order, top row first within each, and
    the diagonals' lengths and first rows; the order is a permutation for other shapes too, whose
    chunks hold its rows in turn."""
    assert diagonal_order(3, 4).tolist() == [0, 1, 4, 2, 5, 8, 3, 6, 9, 7, 10, 11]
    assert diagonal_chunks(3, 4) == ((1, 0), (2, 0), (3, 0), (3, 0), (2, 1), (1, 2))
    for h, w in [(1, 5), (5, 1), (4, 4), (7, 3)]:
        order = diagonal_order(h, w)
        assert sorted(order.tolist()) == list(range(h * w))
        sums = [i + j for i, j in zip((order // w).tolist(), (order % w).tolist())]
        assert sums == sorted(sums) and len(diagonal_chunks(h, w)) == h + w - 1
        rows = [first + r for n, first in diagonal_chunks(h, w) for r in range(n)]
        assert rows == (order // w).tolist()


# -- fast sampler == generic sampler -------------------------------------------------------------------
def both_samplers(model, n: int, seed: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast and generic samples from the same seed; also checks that both samplers handed the head
    the same parameters at every step (a sharper test than equal samples, which a small error in
    a conditional rarely changes)."""
    samples, params = [], []
    for method in ("fast", "generic"):
        seen: list[torch.Tensor] = []
        draw = model.head.sample

        def spy(p, generator=None, seen=seen, draw=draw):
            seen.append(p)
            return draw(p, generator)

        model.head.sample = spy
        try:
            generator = torch.Generator().manual_seed(seed)
            samples.append(model.sample(n, generator=generator, method=method, **kwargs))
        finally:
            del model.head.sample
        params.append(torch.stack(seen))
    assert params[0].shape == params[1].shape == (model.dim, n, *params[0].shape[2:])
    assert torch.allclose(params[0], params[1], rtol=0, atol=1e-10)
    return samples[0], samples[1]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("shape", "levels", "head"),
    [([4, 5], 2, "auto"), ([3, 3, 3], 2, "auto"), ([3, 4], 4, "categorical"), ([2, 3, 3], 4, "logistic")],
)
def test_fast_sampler_matches_generic(name, shape, levels, head) -> None:
    model = make(name, shape, num_values=levels, head=head, components=2)
    fast, generic = both_samplers(model, 4, seed=7)
    assert torch.equal(fast, generic)
    assert 0 < fast.float().mean() < levels - 1  # not a degenerate all-zero image


@pytest.mark.parametrize("name", MODELS)
def test_fast_completion_matches_generic_and_keeps_observed(name) -> None:
    model = make(name, [4, 4, 3], seed=3)
    given = torch.bernoulli(torch.full((3, model.dim), 0.5, dtype=torch.float64))
    mask = torch.zeros(model.dim, dtype=torch.bool)
    mask[: model.dim // 2] = True  # top half observed
    mask[-5] = True  # and one sub-pixel in the bottom half
    fast, generic = both_samplers(model, 3, seed=11, given=given, mask=mask)
    assert torch.equal(fast, generic)
    assert torch.equal(fast[:, mask], given[:, mask])


# -- persistence and options ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path) -> None:
    model = make(name, [3, 4, 3], num_values=4, head="logistic", components=2).float()
    save(model, tmp_path / "m")
    back = load(tmp_path / "m")
    assert type(back) is type(model) and back.config() == model.config()
    x = torch.randint(0, 4, (5, model.dim)).float()
    assert torch.allclose(back.log_prob(x), model.log_prob(x))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(channels=2, image_shape=[4, 4, 3]), "channels must be an integer >= 3"),
        (dict(layers=0), "layers must be positive"),
        (dict(layers=1.5), "layers must be an integer"),
        (dict(first_kernel=4), "first_kernel must be odd"),
        (dict(output_channels=True), "output_channels"),
        (dict(head="gaussian"), "unknown image head"),
        (dict(image_shape=None), "image_shape"),
        (dict(num_values=3, head="bernoulli"), "num_values must be 2"),
    ],
)
def test_bad_options_are_clear_errors(name, kwargs, message) -> None:
    kwargs = {"image_shape": [4, 4], **kwargs}
    with pytest.raises(ChainruleError, match=message):
        build_model(name, **kwargs)


def test_registered_names() -> None:
    assert build_model("row-lstm", image_shape=[2, 2]).registry_name == "row-lstm"
    assert build_model("diagonal-bilstm", image_shape=[2, 2]).registry_name == "diagonal-bilstm"
