"""Recipes: one YAML file per result (model x data x hyper-parameters), with `key=value` overrides.

model: {name: nade, hidden: 500}
data: {name: binarized-mnist}
train: {batch_size: 128, max_epochs: 100, lr: 0.001}
out: runs/nade-mnist
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from chainrule.data import DATASETS, Dataset, SequenceDataset, load_dataset
from chainrule.errors import ChainruleError, first_line
from chainrule.models import MODEL_REGISTRY, Model, build_model
from chainrule.models.base import models_sequences
from chainrule.training import TrainConfig

SECTIONS = {"model", "data", "train", "out", "description", "evaluate"}


class RecipeLoader(yaml.SafeLoader):
    """YAML as recipes read it: safe, and with YAML 1.2's scalars where 1.1 surprises: `true`/`false`
    are the only booleans (`yes`, `on`, `maybe` stay strings, refused where a boolean is due) and
    `3e-4` is a float (YAML 1.1 wants `3.0e-4`)."""


RecipeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str) -> Any:
    """`text` parsed by `RecipeLoader`; any failure (bad syntax, nesting too deep) is one line."""
    try:
        return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise ChainruleError(f"{where} is not valid YAML ({first_line(e, type(e).__name__)})") from None
    except RecursionError:
        raise ChainruleError(f"{where} is nested too deeply") from None


def load_recipe(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a recipe and apply `section.key=value` overrides (values parsed as YAML, see
    `RecipeLoader`); the result has passed `check_recipe`."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"recipe {str(path)!r} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ChainruleError(f"recipe {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ChainruleError(f"cannot read recipe {path}: {e.strerror or e}") from None
    recipe = parse_yaml(text, f"recipe {path}") or {}
    if not isinstance(recipe, dict):
        raise ChainruleError(f"recipe {path} must be a mapping with sections {sorted(SECTIONS)}")
    for item in overrides:
        apply_override(recipe, item)
    check_recipe(recipe, str(path))
    return recipe


def apply_override(recipe: dict[str, Any], item: str) -> None:
    """Set `section.key=value` in `recipe` (only inside mappings: a scalar is never replaced by a
    section, and a section never by a scalar)."""
    if "=" not in item:
        raise ChainruleError(f"override {item!r} must look like section.key=value")
    key, value = item.split("=", 1)
    *parents, leaf = key.split(".")
    if not parents and leaf in ("out", "description"):  # the scalar sections
        recipe[leaf] = parse_yaml(value, f"override {item!r}: the value")
        return
    if not parents or not all(parents) or not leaf:
        raise ChainruleError(f"override {item!r} must look like section.key=value (e.g. train.lr=3e-4)")
    node = recipe
    for p in parents:
        if not isinstance(node.get(p, {}), dict):
            raise ChainruleError(f"override {item!r}: {p} is not a section")
        node = node.setdefault(p, {})
    parsed = parse_yaml(value, f"override {item!r}: the value")
    if isinstance(node.get(leaf), dict) and not isinstance(parsed, dict):
        raise ChainruleError(f"override {item!r}: {leaf} is a section; set one of its keys")
    node[leaf] = parsed


def check_recipe(recipe: dict[str, Any], where: str = "recipe") -> None:
    """Refuse unknown sections and keys, naming the valid ones."""
    unknown = sorted(set(map(str, recipe)) - SECTIONS)
    if unknown:
        raise ChainruleError(f"{where}: unknown section(s) {unknown}; valid: {sorted(SECTIONS)}")
    model = recipe.get("model")
    if not isinstance(model, dict) or "name" not in model:
        raise ChainruleError(f"{where}: needs `model: {{name: ...}}`; models: {sorted(MODEL_REGISTRY)}")
    if not isinstance(model["name"], str) or model["name"] not in MODEL_REGISTRY:
        raise ChainruleError(f"{where}: unknown model {model['name']!r}; models: {sorted(MODEL_REGISTRY)}")
    params = set(inspect.signature(MODEL_REGISTRY[model["name"]].__init__).parameters) - {"self"}
    bad = sorted(set(map(str, model)) - params - {"name"})
    if bad:
        raise ChainruleError(
            f"{where}: unknown key(s) {dotted_keys('model', bad)}; model {model['name']!r}"
            f" takes {sorted(params)}"
        )
    data = recipe.get("data")
    if not isinstance(data, dict) or "name" not in data:
        raise ChainruleError(f"{where}: needs `data: {{name: ...}}`; datasets: {list(DATASETS)}")
    if not isinstance(data["name"], str):
        raise ChainruleError(
            f"{where}: data.name must be a string (a dataset name, csv:PATH, ...), got {data['name']!r}"
        )
    bad = sorted(set(map(str, data)) - {"name"})
    if bad:
        raise ChainruleError(f"{where}: unknown key(s) {dotted_keys('data', bad)}; valid: ['name']")
    train = recipe.get("train", {}) or {}
    if not isinstance(train, dict):
        raise ChainruleError(f"{where}: `train` must be a mapping of keys {TrainConfig.keys()}")
    bad = sorted(set(map(str, train)) - set(TrainConfig.keys()))
    if bad:
        raise ChainruleError(
            f"{where}: unknown key(s) {dotted_keys('train', bad)}; valid: {TrainConfig.keys()}"
        )
    out = recipe.get("out")
    if out is not None and (not isinstance(out, str) or not out.strip()):
        raise ChainruleError(f"{where}: `out` must be a folder path, got {out!r}")
    check_evaluate_section(recipe.get("evaluate"), MODEL_REGISTRY[model["name"]], where)


#: Arguments of the evaluation function that the recipe's `evaluate:` section may not set: the
#: model and its data come from the recipe, the split is always the test split.
_EVALUATE_FIXED = {"model", "data", "x", "cond", "split", "dataset"}


def evaluate_options(model_class: type[Model]) -> list[str]:
    """The options an `evaluate:` entry may set: the keyword arguments of the evaluation function
    (found by `inspect.signature`), plus, where that function passes extra keywords on to the
    model's `log_prob` (`**kwargs`), the keywords of `model_class.log_prob`."""
    from chainrule.evaluation import evaluate as evaluate_function

    options: set[str] = set()
    for fn, skip in ((evaluate_function, _EVALUATE_FIXED), (model_class.log_prob, {"self", "x", "cond"})):
        params = inspect.signature(fn).parameters.values()
        options |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - skip
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return sorted(options)


def check_evaluate_section(section: Any, model_class: type[Model], where: str = "recipe") -> None:
    """`evaluate: {metric_name: {option: value}}`: every entry a mapping of options that the
    evaluation function takes (see `evaluate_options`)."""
    if section is None:
        return
    if not isinstance(section, dict):
        raise ChainruleError(
            f"{where}: `evaluate` must map metric names to options, e.g. {{test: {{k: 1000}}}}"
        )
    valid = evaluate_options(model_class)
    for name, options in section.items():
        if not isinstance(options, dict):
            raise ChainruleError(f"{where}: evaluate.{name} must be a mapping of options; valid: {valid}")
        bad = sorted(set(options) - set(valid))
        if bad:
            raise ChainruleError(
                f"{where}: unknown key(s) {dotted_keys(f'evaluate.{name}', bad)}; valid: {valid}"
            )


def dotted_keys(section: str, names: list[str]) -> str:
    """`train.lrr, train.bogus`: the dotted names of unknown keys, as the user would write them."""
    return ", ".join(f"{section}.{name}" for name in names)


def model_for_data(spec: dict[str, Any], dataset: Dataset | SequenceDataset) -> Model:
    """Build the recipe's model, filling `dim`, `image_shape` and `num_values` from the data (a
    sequence model gets the dataset's vocabulary, or its number of symbols for audio)."""
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    cls = MODEL_REGISTRY[spec["name"]]
    params = inspect.signature(cls.__init__).parameters
    if isinstance(dataset, SequenceDataset):
        if not models_sequences(cls):
            raise ChainruleError(
                f"dataset {dataset.name!r} holds sequences; model {spec['name']!r} is not a sequence model"
            )
        if dataset.tokenizer is not None:
            kwargs.setdefault("vocab", dataset.tokenizer.vocab)
        else:
            kwargs.setdefault("num_values", dataset.num_values)
        return build_model(spec["name"], **kwargs)
    if models_sequences(cls):
        raise ChainruleError(f"model {spec['name']!r} models sequences; dataset {dataset.name!r} does not")
    if "dim" in params:
        kwargs.setdefault("dim", dataset.dim)
    if "image_shape" in params and dataset.image_shape:
        kwargs.setdefault("image_shape", list(dataset.image_shape))
    if "num_values" in params and dataset.num_values:
        kwargs.setdefault("num_values", dataset.num_values)
    model = build_model(spec["name"], **kwargs)
    if model.value_type != dataset.value_type:
        raise ChainruleError(
            f"model {spec['name']!r} is for {model.value_type} data but dataset {dataset.name!r} is"
            f" {dataset.value_type}" + (f" ({dataset.num_values} values)" if dataset.num_values > 2 else "")
        )
    return model


def build_from_recipe(recipe: dict[str, Any]) -> tuple[Model, Dataset | SequenceDataset, TrainConfig]:
    """Data, model and training settings; the model's initial weights come from `train.seed`, so
    a recipe gives the same run on every process and every time."""
    config = TrainConfig(**(recipe.get("train") or {})).check()
    dataset = load_dataset(recipe["data"]["name"])
    torch.manual_seed(config.seed)
    model = model_for_data(recipe["model"], dataset)
    return model, dataset, config
