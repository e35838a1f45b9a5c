"""hypothesis fuzzing: (a) argv lists built from the CLI's real parser with values from a hostile
alphabet -> main() never raises and fails with at most one stderr line; (b) recipes mutated from
recipes/*.yaml -> load_recipe/build_from_recipe raise only ChainruleError."""

from __future__ import annotations

import argparse
import copy
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.cli import build_parser
from chainrule.errors import ChainruleError
from tests.hostile.conftest import REPO, CaseTimeout, run_cli

#: Commands that train, benchmark or write big data sets: covered by their own cases, not fuzzed
#: (a random valid argv would train for minutes or write gigabytes).
SKIP = {
    ("train",),
    ("demo",),
    ("bench",),
    ("data", "synth"),
    ("data", "export"),
    ("classifier", "train"),
    ("defend",),
}


def _commands(parser, prefix=()):
    """(command path, its parser) for every leaf command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
            return
    if prefix and prefix not in SKIP:
        yield prefix, parser


COMMANDS = list(_commands(build_parser()))
HOSTILE = [
    "",
    "-1",
    "0",
    "1",
    "3",
    "1.5",
    "nan",
    "-inf",
    "1e999",
    str(2**70),
    "x",
    "--",
    "é",
    "a,b",
    "=",
    "{nade}",
    "{tf}",
    "{asia}",
    "{out}/f.csv",
    "{out}/f.png",
    "{nade}/model.safetensors",
    "{out}",
    "/proc/none",
    "digits",
    "bars-3",
    "text:{nade}/config.json",
    "csv:{nade}/config.json",
    "smoke=yes",
    "lung",
    "bottom-half",
]


@st.composite
def argvs(draw):
    path, parser = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    for action in parser._actions:
        if action.option_strings and "-h" in action.option_strings:
            continue
        positional = not action.option_strings
        if not positional and not draw(st.booleans()):
            continue
        if not positional:
            argv.append(draw(st.sampled_from(action.option_strings)))
        if action.nargs == 0:
            continue
        if action.choices and draw(st.booleans()):
            argv.append(str(draw(st.sampled_from(list(action.choices)))))
        else:
            argv.append(draw(st.sampled_from(HOSTILE)))
    return argv


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory, model_store):
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("nade", "tf", "asia-model"):
        shutil.copytree(model_store / name, root / "in" / name)
    return root


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(argv=argvs())
def test_fuzz_cli(fuzz_root, argv) -> None:
    out = fuzz_root / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    sub = {
        "nade": fuzz_root / "in" / "nade",
        "tf": fuzz_root / "in" / "tf",
        "asia": fuzz_root / "in" / "asia-model",
        "out": out,
    }
    argv = [a.format(**sub) for a in argv]
    before = {p: p.stat().st_mtime_ns for p in (fuzz_root / "in").rglob("*")}
    try:
        r = run_cli(argv, fuzz_root, timeout=20)
    except CaseTimeout:
        pytest.fail(f"chainrule {' '.join(argv)} ran past 20 s")
    assert r.raised is None, f"chainrule {' '.join(argv)}: {type(r.raised).__name__}: {r.raised}"
    assert "Traceback" not in r.stderr
    if r.code != 0:
        assert len(r.err_lines) == 1, f"chainrule {' '.join(argv)}:\n{r.stderr[-1500:]}"
    after = {p: p.stat().st_mtime_ns for p in (fuzz_root / "in").rglob("*")}
    assert before == after, f"chainrule {' '.join(argv)} changed its inputs"


BASE_RECIPES = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "recipes").glob("*.yaml"))]
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def recipes(draw):
    recipe = copy.deepcopy(draw(st.sampled_from(BASE_RECIPES)))
    recipe["data"] = {"name": "digits"}  # the embedded data: no download, small
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(["model", "train", "data", "out", "evaluate"]))
        node = recipe.get(section)
        if isinstance(node, dict) and node and draw(st.booleans()):
            node[draw(st.sampled_from(sorted(node)))] = draw(HOSTILE_VALUES)
        else:
            recipe[section] = draw(HOSTILE_VALUES)
    return recipe


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(recipe=recipes())
def test_fuzz_recipes(tmp_path_factory, recipe) -> None:
    from chainrule.recipes import build_from_recipe, load_recipe

    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    try:
        built = load_recipe(path)
        model, _, _ = build_from_recipe(built)
    except ChainruleError as e:
        assert "\n" not in str(e).strip()
        return
    except CaseTimeout:
        raise
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{type(e).__name__}: {e} for recipe {recipe}")
