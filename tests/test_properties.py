"""Property-based bad-input tests (hypothesis): whatever arrives at the Python API or the CLI -
any shape, dtype, range, NaN, empty data, unknown name, damaged file - the answer is a result or
one clear ChainruleError (exit code 2 and one line from the CLI), never a stray exception."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chainrule import cli
from chainrule.data import DATASETS, load_dataset
from chainrule.data.binarize import binarize
from chainrule.errors import ChainruleError
from chainrule.evaluation import evaluate_nll
from chainrule.models import FVSBN, MADE, MODEL_REGISTRY, NADE, build_model
from chainrule.persistence import load, save
from chainrule.recipes import build_from_recipe, load_recipe
from chainrule.training import TrainConfig

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DIM = 6
MODELS = {"fvsbn": FVSBN(DIM), "nade": NADE(DIM, hidden=4), "made": MADE(DIM, hidden=[8], num_masks=2)}
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]
VALUES = st.sampled_from([0.0, 1.0, 0.0, 1.0, 0.5, -1.0, 2.0, 255.0, math.nan, math.inf, -math.inf])
NAMES = st.text(min_size=0, max_size=20)


@st.composite
def tensors(draw) -> torch.Tensor:
    batch = draw(st.integers(0, 4))
    trailing = draw(st.sampled_from([(DIM,), (2, 3), (3, 2), (5,), (7,), (DIM, 1), (), (1, DIM)]))
    values = draw(
        st.lists(VALUES, min_size=batch * math.prod(trailing), max_size=batch * math.prod(trailing))
    )
    dtype = draw(st.sampled_from(DTYPES))
    x = torch.tensor(values, dtype=torch.float64).reshape(batch, *trailing)
    if not dtype.is_floating_point:
        x = torch.nan_to_num(x, nan=0.0, posinf=2.0, neginf=-1.0)
        if dtype in (torch.uint8, torch.bool):
            x = x.clamp(min=0)
    return x.to(dtype)


def is_valid(x: torch.Tensor) -> bool:
    if x.dim() < 1 or x.shape[0] == 0 or math.prod(x.shape[1:]) != DIM:
        return False
    v = x.double()
    return bool(torch.isfinite(v).all() and ((v == 0) | (v == 1)).all())


@pytest.mark.parametrize("name", list(MODELS))
@SETTINGS
@given(x=tensors())
def test_log_prob_is_a_result_or_a_clear_error(name, x) -> None:
    model = MODELS[name].eval()
    if is_valid(x):
        lp = model.log_prob(x)
        assert lp.shape == (x.shape[0],) and torch.isfinite(lp).all() and (lp <= 0).all()
        assert evaluate_nll(model, x, batch_size=3).n == x.shape[0]
    else:
        with pytest.raises(ChainruleError):
            model.log_prob(x)


@given(x=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(0, 1), max_size=6)))
@SETTINGS
def test_non_tensors_are_refused(x) -> None:
    for model in MODELS.values():
        with pytest.raises(ChainruleError):
            model.log_prob(x)
    x_np = np.zeros((2, DIM))
    with pytest.raises(ChainruleError, match="torch.Tensor"):
        MODELS["nade"].log_prob(x_np)


@given(n=st.one_of(st.integers(-5, 3), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3)))
@SETTINGS
def test_sample_counts(n) -> None:
    model = MODELS["made"].eval()
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        assert model.sample(n).shape == (n, DIM)
    else:
        with pytest.raises(ChainruleError):
            model.sample(n)


@given(name=NAMES)
@SETTINGS
def test_unknown_dataset_names(name) -> None:
    assume(name not in DATASETS)
    with pytest.raises(ChainruleError, match="unknown dataset|does not exist|missing"):
        load_dataset(name if name.startswith("mmap:") else name)
    with pytest.raises(ChainruleError):
        load_dataset("mmap:/nonexistent/" + name)


ARGS = st.one_of(
    st.integers(-3, 4),
    st.lists(st.integers(-2, 6), max_size=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
)


@given(
    name=st.sampled_from([*sorted(MODEL_REGISTRY), "wavenet", ""]),
    kwargs=st.dictionaries(
        st.sampled_from(
            ["dim", "hidden", "num_masks", "num_values", "order", "ordering", "seed", "depth", "components"]
            + ["latent", "num_orders", "covariance"]
        ),
        ARGS,
        max_size=4,
    ),
)
@SETTINGS
def test_model_constructors(name, kwargs) -> None:
    try:
        model = build_model(name, **kwargs)
    except ChainruleError:
        return
    dim = math.prod(8 if d is None else d for d in model.event_shape)  # None: any length (sequences)
    assume(dim <= 64)  # keep the check cheap
    x = torch.zeros(2, dim, dtype=next(model.parameters(), torch.zeros(1)).dtype)
    assert model.log_prob(x).shape == (2,)


CONFIG_VALUES = st.one_of(
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.sampled_from(["cosine", "constant", "bf16-mixed", "32-true", "ddp", "ddp_spawn", "cpu", "gpu"]),
)


@given(
    overrides=st.dictionaries(
        st.sampled_from(TrainConfig.keys() + ["epochs", "learning_rate"]), CONFIG_VALUES
    )
)
@SETTINGS
def test_train_settings(overrides) -> None:
    try:
        config = TrainConfig(**overrides).check()
    except (ChainruleError, TypeError) as e:  # TypeError: an unknown keyword, as for any dataclass
        assert isinstance(e, ChainruleError) or set(overrides) - set(TrainConfig.keys())
        return
    assert config.batch_size >= 1 and config.lr >= 0


@given(items=st.lists(st.text(max_size=25), max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_recipe_overrides(tmp_path_factory, items) -> None:
    recipe = tmp_path_factory.getbasetemp() / "prop_recipe.yaml"
    recipe.write_text("model: {name: nade, hidden: 4}\ndata: {name: bars-3}\n")
    try:
        model, data, config = build_from_recipe(load_recipe(recipe, items))
    except ChainruleError:
        return
    assert model.log_prob(data.test[:2]).shape == (2,)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save(NADE(9, hidden=4, image_shape=[3, 3]), tmp_path_factory.mktemp("m") / "model")


CLI_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=4),
    st.integers(-3, 200).map(str),
    st.sampled_from(["1e9", "nan", "bars-3", "digits", "lung", "smoke=yes", "a=b,c", "=", ",", "mmap:/x"]),
)


@given(
    command=st.sampled_from(["sample", "eval", "bn-query", "bn-sample", "data-info", "bench", "datasets"]),
    a=CLI_TEXT,
    b=CLI_TEXT,
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_answers_or_fails_in_one_line(saved_model, tmp_path_factory, command, a, b) -> None:
    bif = str(Path(__file__).parent / "data" / "bif" / "asia.bif.gz")
    out_png = str(tmp_path_factory.getbasetemp() / "prop.png")
    argv = {
        "sample": ["sample", str(saved_model), "-n", a, "--seed", b, "--out", out_png, "--force"],
        "eval": ["eval", str(saved_model), "--data", a, "--batch-size", b],
        "bn-query": ["bn", "query", bif, "--target", a, "--evidence", b],
        "bn-sample": ["bn", "sample", bif, "-n", a, "--out", str(tmp_path_factory.getbasetemp() / "s.csv")],
        "data-info": ["data", "info", a],
        "bench": ["bench", "--only", a or "?", "--out", str(tmp_path_factory.getbasetemp())],
        "datasets": ["datasets", a],
    }[command]
    from chainrule.benchmark.suite import PARTS

    # a valid part name would start a real benchmark run
    assume(not (command == "bench" and any(p.strip() in PARTS for p in (a or "?").split(","))))
    code, out, err = run_cli(argv)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.strip() and "Traceback" not in err, (argv, err)
        if err.startswith("chainrule: error:"):
            assert err.strip().count("\n") == 0, (argv, err)
    else:
        json.loads(out.strip().splitlines()[-1])


@given(
    where=st.sampled_from(["weights", "config"]),
    how=st.sampled_from(["truncate", "flip", "append"]),
    position=st.floats(0, 1, exclude_max=True),
    byte=st.integers(1, 255),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_damaged_model_files_are_refused(tmp_path_factory, where, how, position, byte) -> None:
    folder = tmp_path_factory.mktemp("damaged") / "m"
    model = MADE(DIM, hidden=[8], num_masks=2)
    save(model, folder)
    path = folder / ("model.safetensors" if where == "weights" else "config.json")
    data = bytearray(path.read_bytes())
    i = int(position * len(data))
    if how == "truncate":
        data = data[:i]
    elif how == "flip":
        data[i] ^= byte
    else:
        data += bytes([byte])
    path.write_bytes(bytes(data))
    try:
        again = load(folder)
    except ChainruleError as e:
        assert "\n" not in str(e)
        return
    # only a harmless change to config.json (whitespace, trailing bytes JSON ignores) may load
    assert where == "config"
    x = torch.zeros(3, DIM)
    assert torch.equal(again.log_prob(x), model.eval().log_prob(x))


@given(
    p=st.lists(st.floats(0, 1), min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 10**6),
)
@SETTINGS
def test_binarization_values(p, seed, epoch) -> None:
    probs = torch.tensor(p).reshape(1, -1)
    x = binarize(probs, torch.tensor([7]), seed, epoch)
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    assert torch.all(x[probs == 0] == 0) and torch.all(x[probs == 1] == 1)
