"""Python-API misuse: wrong shapes, NaN, non-binary values, complex tensors, int/bool/float n,
a generator that is not a torch.Generator, negative batch sizes, given/mask mismatches, bad
sampling options. Each raises a one-line ChainruleError (never a torch error or a wrong answer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chainrule.graphical import read_bif
from chainrule.models import MADE, NADE, VAE, CausalTransformer, GatedPixelCNN
from tests.hostile.conftest import BIF_DIR, raises_chainrule

torch.manual_seed(0)
NADE8 = NADE(8, hidden=4).eval()
MADE8 = MADE(8, hidden=[8]).eval()
VAE8 = VAE(8, latent=2, hidden=[6]).eval()
TF = CausalTransformer(vocab="ab \n", d_model=8, layers=1, heads=2, block_size=16, mlp_ratio=2).eval()
PCNN = GatedPixelCNN(
    image_shape=[3, 3], channels=4, layers=1, first_kernel=3, output_channels=4, num_classes=3
)
ASIA = read_bif(BIF_DIR / "asia.bif.gz")
BINARY = [("nade", NADE8), ("made", MADE8), ("vae", VAE8)]
ZERO8 = torch.zeros(2, 8)


def _nan8():
    x = torch.zeros(2, 8)
    x[0, 1] = float("nan")
    return x


LOG_PROB_BAD: list[tuple[str, object]] = [
    ("wrong-size", torch.zeros(2, 9)),
    ("empty-batch", torch.zeros(0, 8)),
    ("scalar", torch.tensor(1.0)),
    ("nan", _nan8()),
    ("inf", torch.full((2, 8), float("inf"))),
    ("half-values", torch.full((2, 8), 0.5)),
    ("value-two", torch.full((2, 8), 2.0)),
    ("negative", -torch.ones(2, 8)),
    ("complex", torch.zeros(2, 8, dtype=torch.complex64)),
    ("numpy-array", np.zeros((2, 8))),
    ("python-list", [[0.0] * 8] * 2),
    ("string", "01010101"),
    ("none", None),
]


@pytest.mark.parametrize(("model_id", "model"), BINARY, ids=[m for m, _ in BINARY])
@pytest.mark.parametrize(("case", "x"), LOG_PROB_BAD, ids=[c for c, _ in LOG_PROB_BAD])
def test_log_prob_bad_input(model_id, model, case, x) -> None:
    with raises_chainrule():
        model.log_prob(x)


@pytest.mark.parametrize(("model_id", "model"), BINARY, ids=[m for m, _ in BINARY])
@pytest.mark.parametrize(
    "n",
    [0, -1, 2.0, True, "3", None, 2**70, torch.tensor(3)],
    ids=["0", "-1", "float", "bool", "str", "None", "huge", "tensor"],
)
def test_sample_bad_n(model_id, model, n) -> None:
    with raises_chainrule():
        model.sample(n)


@pytest.mark.parametrize(("model_id", "model"), BINARY, ids=[m for m, _ in BINARY])
@pytest.mark.parametrize(
    "generator",
    [0, "seed", np.random.default_rng(0), torch.Generator().manual_seed(0).get_state()],
    ids=["int", "str", "numpy-rng", "state-tensor"],
)
def test_sample_non_generator(model_id, model, generator) -> None:
    with raises_chainrule():
        model.sample(2, generator=generator)


COMPLETION_BAD = [
    ("mask-wrong-size", torch.zeros(2, 8), torch.ones(5, dtype=torch.bool)),
    ("given-wrong-size", torch.zeros(2, 9), torch.ones(8, dtype=torch.bool)),
    ("given-n-mismatch", torch.zeros(3, 8), torch.ones(8, dtype=torch.bool)),
    ("mask-values-two", torch.zeros(2, 8), torch.full((8,), 2)),
    ("mask-complex", torch.zeros(2, 8), torch.ones(8, dtype=torch.complex64)),
    ("observed-nan", _nan8(), torch.ones(8, dtype=torch.bool)),
    ("observed-half", torch.full((2, 8), 0.5), torch.ones(8, dtype=torch.bool)),
    ("mask-without-given", None, torch.ones(8, dtype=torch.bool)),
    ("given-without-mask", torch.zeros(2, 8), None),
    ("given-complex", torch.zeros(2, 8, dtype=torch.complex64), torch.ones(8, dtype=torch.bool)),
]


@pytest.mark.parametrize(("model_id", "model"), BINARY[:2], ids=[m for m, _ in BINARY[:2]])
@pytest.mark.parametrize(("case", "given", "mask"), COMPLETION_BAD, ids=[c for c, *_ in COMPLETION_BAD])
def test_completion_mismatch(model_id, model, case, given, mask) -> None:
    with raises_chainrule():
        model.sample(2, given=given, mask=mask)


def test_unobserved_nan_is_ignored() -> None:
    """The completion rule: NaN in unobserved entries is allowed and the observed part is kept."""
    given = _nan8()
    mask = torch.ones(8, dtype=torch.bool)
    mask[1] = False
    x = NADE8.sample(2, given=given, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and (x[:, mask] == given[:, mask]).all()


GENERATE_BAD: list[tuple[str, dict]] = [
    ("n-negative", {"n_new": -1}),
    ("n-float", {"n_new": 2.5}),
    ("n-bool", {"n_new": True}),
    ("temperature-nan", {"temperature": float("nan")}),
    ("temperature-inf", {"temperature": float("inf")}),
    ("temperature-negative", {"temperature": -1.0}),
    ("temperature-string", {"temperature": "hot"}),
    ("temperature-complex", {"temperature": 1j}),
    ("top-k-zero", {"top_k": 0}),
    ("top-k-float", {"top_k": 1.5}),
    ("top-k-bool", {"top_k": True}),
    ("top-k-string", {"top_k": "5"}),
    ("top-p-zero", {"top_p": 0.0}),
    ("top-p-nan", {"top_p": float("nan")}),
    ("top-p-above-one", {"top_p": 1.01}),
    ("top-p-string", {"top_p": "0.9"}),
    ("batch-zero", {"batch": 0}),
    ("batch-negative", {"batch": -2}),
    ("batch-float", {"batch": 2.0}),
    ("generator-int", {"generator": 0}),
    ("generator-numpy", {"generator": np.random.default_rng(0)}),
    ("prompt-out-of-vocab", {"prompt": torch.tensor([7, 1])}),
    ("prompt-nan", {"prompt": torch.tensor([float("nan")])}),
    ("prompt-string", {"prompt": "ab"}),
    ("prompt-complex", {"prompt": torch.zeros(2, dtype=torch.complex64)}),
]


@pytest.mark.parametrize(("case", "kwargs"), GENERATE_BAD, ids=[c for c, _ in GENERATE_BAD])
def test_generate_bad_options(case, kwargs) -> None:
    args = {"prompt": torch.tensor([0, 1]), "n_new": 3, **kwargs}
    prompt, n_new = args.pop("prompt"), args.pop("n_new")
    with raises_chainrule():
        TF.generate(prompt, n_new, **args)


def test_generate_tiny_temperature_not_token_zero() -> None:
    """1e-40 must act as greedy decoding (or be refused), not return token 0 every time."""
    prompt = torch.tensor([1, 1])
    try:
        tiny = TF.generate(prompt, 8, temperature=1e-40, generator=torch.Generator().manual_seed(0))
    except Exception as e:  # noqa: BLE001
        from chainrule.errors import ChainruleError

        assert isinstance(e, ChainruleError), repr(e)
        return
    greedy = TF.generate(prompt, 8, temperature=0.0)
    assert torch.equal(tiny, greedy)


SEQUENCE_BAD = [
    ("ids-too-large", torch.tensor([[0, 9]])),
    ("ids-negative", torch.tensor([[0, -1]])),
    ("ids-float-fraction", torch.tensor([[0.5, 1.0]])),
    ("ids-3d", torch.zeros(1, 2, 3, dtype=torch.long)),
    ("ids-empty", torch.zeros(1, 0, dtype=torch.long)),
    ("ids-complex", torch.zeros(1, 3, dtype=torch.complex64)),
]


@pytest.mark.parametrize(("case", "x"), SEQUENCE_BAD, ids=[c for c, _ in SEQUENCE_BAD])
def test_sequence_log_prob_bad(case, x) -> None:
    with raises_chainrule():
        TF.log_prob(x)


def test_encode_out_of_vocab() -> None:
    with raises_chainrule():
        TF.encode("xyz")


@pytest.mark.parametrize(
    "cond",
    [torch.tensor([3]), torch.tensor([0.5]), torch.tensor([-1]), torch.tensor([[0], [1]]), "cat"],
    ids=["class-out-of-range", "fractional", "negative", "wrong-count", "string"],
)
def test_class_conditional_bad_cond(cond) -> None:
    with raises_chainrule():
        PCNN.sample(3, cond=cond)


@pytest.mark.parametrize("cond", [torch.tensor([0, 1]), None], ids=["cond-for-unconditional", "none"])
def test_cond_for_unconditional_or_missing(cond) -> None:
    model = NADE8 if cond is not None else PCNN
    with raises_chainrule():
        model.log_prob(torch.zeros(2, 8) if cond is not None else torch.zeros(2, 9), cond)


def test_vae_k_bad() -> None:
    for k in (0, -1, 1.5, True):
        with raises_chainrule():
            VAE8.log_prob(ZERO8, k=k)


BN_BAD: list[tuple[str, callable]] = [
    ("query-unknown-target", lambda: ASIA.query("ghost")),
    ("query-unknown-state", lambda: ASIA.query("lung", {"smoke": "maybe"})),
    ("query-state-index-out-of-range", lambda: ASIA.query("lung", {"smoke": 7})),
    ("query-evidence-list", lambda: ASIA.query("lung", ["smoke=yes"])),
    ("mpe-unknown-variable", lambda: ASIA.mpe({"ghost": "yes"})),
    ("log-prob-codes-out-of-range", lambda: ASIA.log_prob(torch.full((2, 8), 5))),
    ("log-prob-wrong-width", lambda: ASIA.log_prob(torch.zeros(2, 3, dtype=torch.long))),
    ("log-prob-fractional", lambda: ASIA.log_prob(torch.full((2, 8), 0.5))),
    ("sample-zero", lambda: ASIA.sample(0)),
    ("sample-bool", lambda: ASIA.sample(True)),
    ("fit-negative-alpha", lambda: ASIA.fit(torch.zeros(10, 8, dtype=torch.long), alpha=-1.0)),
    ("fit-nan-alpha", lambda: ASIA.fit(torch.zeros(10, 8, dtype=torch.long), alpha=float("nan"))),
    ("fit-bad-codes", lambda: ASIA.fit(torch.full((10, 8), 3, dtype=torch.long))),
]


@pytest.mark.parametrize(("case", "call"), BN_BAD, ids=[c for c, _ in BN_BAD])
def test_bayesian_network_misuse(case, call) -> None:
    with raises_chainrule():
        call()


def test_evaluate_negative_batch_size() -> None:
    from chainrule.evaluation import evaluate_nll

    for batch in (0, -5, 2.5):
        with raises_chainrule():
            evaluate_nll(NADE8, torch.zeros(4, 8), batch_size=batch)


def test_nan_weights_give_error_not_nan() -> None:
    """A model whose weights are NaN must not report a NaN likelihood as a number."""
    from chainrule.evaluation import evaluate_nll

    model = NADE(8, hidden=4)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with raises_chainrule():
        evaluate_nll(model, torch.zeros(4, 8))


@pytest.mark.parametrize("folder", [42, None, 1.5])
def test_load_of_a_non_path_is_one_line(folder) -> None:
    from chainrule.persistence import load

    with raises_chainrule("must be a path"):
        load(folder)
