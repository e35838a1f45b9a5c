"""Malformed and hostile recipes and overrides: the Python API raises a one-line ChainruleError,
the CLI prints one line; a valid tiny recipe trains (one epoch on the 8x8 digits)."""

from __future__ import annotations

import pytest

from chainrule.recipes import build_from_recipe, load_recipe
from tests.hostile.conftest import assert_ok, assert_one_line_error, raises_chainrule

GOOD = (
    "model: {name: nade, hidden: 8}\ndata: {name: digits}\ntrain: {batch_size: 64, max_epochs: 1, seed: 0}\n"
)

# recipe files that must be refused (by load_recipe or, at the latest, build_from_recipe)
BAD_FILES: list[tuple[str, bytes | str]] = [
    ("non-utf8", b"model: {name: nade}\ndata: {name: \xff\xfe digits}\n"),
    ("binary-garbage", bytes(range(256)) * 4),
    ("top-level-list", "- model\n- data\n"),
    ("top-level-scalar", "42\n"),
    ("model-is-list", "model: [nade, 8]\ndata: {name: digits}\n"),
    ("data-is-list", "model: {name: nade}\ndata: [digits]\n"),
    ("train-is-list", "model: {name: nade}\ndata: {name: digits}\ntrain: [1, 2]\n"),
    ("model-null", "model: null\ndata: {name: digits}\n"),
    ("data-null", "model: {name: nade}\ndata: null\n"),
    ("model-name-null", "model: {name: null}\ndata: {name: digits}\n"),
    ("model-name-list", "model: {name: [nade]}\ndata: {name: digits}\n"),
    ("data-name-int", "model: {name: nade}\ndata: {name: 7}\n"),
    ("unknown-model", "model: {name: gpt-5}\ndata: {name: digits}\n"),
    ("unknown-section", "model: {name: nade}\ndata: {name: digits}\noptimizer: {lr: 1}\n"),
    ("unknown-model-key", "model: {name: nade, hiden: 5}\ndata: {name: digits}\n"),
    ("unknown-train-key", "model: {name: nade}\ndata: {name: digits}\ntrain: {learning_rate: 1}\n"),
    ("huge-int-hidden", "model: {name: nade, hidden: 100000000000000000000000}\ndata: {name: digits}\n"),
    ("hidden-string", "model: {name: nade, hidden: lots}\ndata: {name: digits}\n"),
    ("hidden-negative", "model: {name: nade, hidden: -3}\ndata: {name: digits}\n"),
    ("hidden-float", "model: {name: nade, hidden: 7.5}\ndata: {name: digits}\n"),
    ("hidden-nan", "model: {name: nade, hidden: .nan}\ndata: {name: digits}\n"),
    (
        "deep-nesting",
        "model: {name: nade, hidden: " + "[" * 100_000 + "]" * 100_000 + "}\ndata: {name: digits}\n",
    ),
    ("missing-model", "data: {name: digits}\n"),
    ("missing-data", "model: {name: nade}\n"),
    ("yaml-syntax", "model: {name: nade\ndata: {name: digits}\n"),
    ("yaml-python-tag", "model: !!python/object/apply:os.system ['echo pwned']\ndata: {name: digits}\n"),
    (
        "yaml-alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "model: {name: nade, hidden: [*d, *d, *d, *d]}\ndata: {name: digits}\n",
    ),
    ("out-is-list", "model: {name: nade}\ndata: {name: digits}\nout: [a, b]\n"),
    ("evaluate-is-string", "model: {name: nade}\ndata: {name: digits}\nevaluate: everything\n"),
]


def _load_and_build(path, overrides=()):
    recipe = load_recipe(path, list(overrides))
    return build_from_recipe(recipe)


@pytest.mark.parametrize(("case", "text"), BAD_FILES, ids=[c for c, _ in BAD_FILES])
def test_bad_recipe_file_python(ws, case, text) -> None:
    path = ws.file("r.yaml", text)
    with raises_chainrule():
        _load_and_build(path)


@pytest.mark.parametrize(
    ("case", "text"),
    [
        c
        for c in BAD_FILES
        if c[0] in ("non-utf8", "top-level-list", "deep-nesting", "yaml-python-tag", "model-null")
    ],
    ids=lambda c: c if isinstance(c, str) else "",
)
def test_bad_recipe_file_cli(ws, case, text) -> None:
    path = ws.file("r.yaml", text)
    assert_one_line_error(ws.cli("train", path, "--out", ws.out / "run"))


# overrides applied to the good recipe that must be refused
BAD_OVERRIDES: list[tuple[str, list[str]]] = [
    ("lr-not-a-number", ["train.lr=fast"]),
    ("lr-nan", ["train.lr=.nan"]),
    ("lr-inf", ["train.lr=.inf"]),
    ("lr-negative", ["train.lr=-1"]),
    ("batch-size-zero", ["train.batch_size=0"]),
    ("batch-size-negative", ["train.batch_size=-64"]),
    ("batch-size-float", ["train.batch_size=6.5"]),
    ("batch-size-huge", ["train.batch_size=100000000000000000000000000"]),
    ("max-epochs-zero", ["train.max_epochs=0"]),
    ("max-epochs-bool", ["train.max_epochs=true"]),
    ("seed-huge", ["train.seed=100000000000000000000000"]),
    ("seed-negative", ["train.seed=-1"]),
    ("progress-maybe", ["train.progress=maybe"]),
    ("compile-yes-please", ["train.compile=yes please"]),
    (
        "warmup-negative-cosine-time",
        ["train.lr_schedule=cosine-time", "train.max_minutes=1", "train.warmup_steps=-1"],
    ),
    ("warmup-float", ["train.lr_schedule=cosine-time", "train.max_minutes=1", "train.warmup_steps=2.5"]),
    ("max-minutes-zero", ["train.max_minutes=0"]),
    ("max-minutes-nan", ["train.max_minutes=.nan"]),
    ("max-minutes-negative", ["train.max_minutes=-5"]),
    ("grad-clip-negative", ["train.grad_clip=-1"]),
    ("grad-clip-inf", ["train.grad_clip=.inf"]),
    ("patience-negative", ["train.patience=-1"]),
    ("weight-decay-nan", ["train.weight_decay=.nan"]),
    ("precision-unknown", ["train.precision=4-bit"]),
    ("accelerator-unknown", ["train.accelerator=tpu"]),
    ("strategy-unknown", ["train.strategy=magic"]),
    ("devices-zero", ["train.devices=0"]),
    ("num-workers-negative", ["train.num_workers=-2"]),
    ("limit-train-batches-zero", ["train.limit_train_batches=0"]),
    ("limit-train-batches-negative", ["train.limit_train_batches=-0.5"]),
    ("limit-val-batches-nan", ["train.limit_val_batches=.nan"]),
    ("perturb-rate-above-one", ["train.perturb_rate=1.5"]),
    ("ema-decay-one", ["train.ema_decay=1"]),
    ("ema-decay-negative", ["train.ema_decay=-0.1"]),
    ("init-from-absent", ["train.init_from=/no/such/model"]),
    ("seq-len-zero", ["train.seq_len=0"]),
    ("lr-schedule-list", ["train.lr_schedule=[cosine]"]),
    ("hidden-zero", ["model.hidden=0"]),
    ("hidden-list", ["model.hidden=[8, 8]"]),
    ("order-wrong-length", ["model.order=[0, 1, 2]"]),
    ("order-not-a-permutation", ["model.order=[" + ", ".join(["0"] * 64) + "]"]),
    ("unknown-model-name", ["model.name=nonesuch"]),
    ("data-name-null", ["data.name=null"]),
    ("no-equals", ["train.lr"]),
    ("unknown-section", ["optimizer.lr=3"]),
    ("unknown-key", ["train.epochs=3"]),
    ("section-is-scalar", ["train=3"]),
    ("nested-into-scalar", ["train.lr.value=3"]),
    ("invalid-yaml-value", ["train.lr=[1, 2"]),
    ("empty-key", ["=3"]),
]


@pytest.mark.parametrize(("case", "overrides"), BAD_OVERRIDES, ids=[c for c, _ in BAD_OVERRIDES])
def test_bad_override_python(ws, case, overrides) -> None:
    path = ws.file("r.yaml", GOOD)
    with raises_chainrule():
        _load_and_build(path, overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.lr=fast"],
        ["train.progress=maybe"],
        ["train.warmup_steps=-1", "train.lr_schedule=cosine-time", "train.max_minutes=1"],
        ["train.seed=100000000000000000000000"],
    ],
    ids=["lr-word", "progress-maybe", "warmup-negative", "seed-huge"],
)
def test_bad_override_cli(ws, overrides) -> None:
    path = ws.file("r.yaml", GOOD)
    assert_one_line_error(ws.cli("train", path, *overrides, "--out", ws.out / "run"))


def test_good_recipe_trains_one_epoch(ws) -> None:
    path = ws.file("r.yaml", GOOD)
    r = ws.cli("train", path, "train.progress=false", "--out", ws.out / "run", timeout=120)
    assert_ok(r)
    assert (ws.out / "run" / "model" / "model.safetensors").is_file()


def test_shipped_recipes_load(ws) -> None:
    """Every recipe in recipes/ still loads (the validation refuses no published configuration)."""
    from tests.hostile.conftest import REPO

    for path in sorted((REPO / "recipes").glob("*.yaml")):
        load_recipe(path)
