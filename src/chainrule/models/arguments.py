"""Check argument values against their simple type annotations, and size-like names against ranges.

One check serves every place a value enters from outside: a model's constructor arguments (from a
recipe, a config.json or Python; `Model.__init_subclass__` runs it before any constructor body)
and a recipe's `train` keys (`TrainConfig.check`). Annotations are read as strings (modules use
`from __future__ import annotations`); the forms understood are `int`, `float`, `bool`, `str`,
`list[int]` and unions of these with `None`. An argument with any other annotation (a tensor, a
`Sequence[...]`) is left to its constructor.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.errors import ChainruleError

#: Integer arguments that are sizes: at least 1 (each entry, for a list).
POSITIVE = frozenset(
    [
        "dim",
        "hidden",
        "channels",
        "layers",
        "components",
        "output_channels",
        "embed",
        "d_model",
        "heads",
        "block_size",
        "latent",
        "skip_channels",
        "num_masks",
        "num_orders",
        "mlp_ratio",
        "first_kernel",
        "kernel",
        "blocks",
        "dilations",
        "image_shape",
    ]
)
#: Integer arguments that may be 0 (off) but not negative.
NON_NEGATIVE = frozenset(["num_classes", "cond_dim", "lowres_factor", "grey_levels", "kl_warmup_steps"])
#: Float arguments that must be > 0.
POSITIVE_FLOATS = frozenset(["min_scale"])
#: Float arguments that may be 0 (off: min_variance 0 is the plain MLE, as scikit-learn's reg_covar=0).
NON_NEGATIVE_FLOATS = frozenset(["min_variance"])
#: Seeds: what `torch.Generator.manual_seed` accepts for a non-negative seed.
SEED_RANGE = (0, 2**63)


def check_seed(seed: Any, what: str = "seed", upper: int = SEED_RANGE[1]) -> int:
    """A seed: an integer in [0, upper) (torch's generators take any value below 2**63; NumPy's,
    used by a training run's `seed_everything`, only below 2**32)."""
    if not _is_int(seed) or not 0 <= seed < upper:
        bound = "2**32" if upper == 2**32 else "2**63" if upper == 2**63 else str(upper)
        raise ChainruleError(f"{what} must be an integer in [0, {bound}), got {seed!r}")
    return seed


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: annotation atom -> (test, what the value must be)
_ATOMS = {
    "int": (_is_int, "an integer"),
    "float": (_is_number, "a finite number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list[int]": (
        lambda v: isinstance(v, (list, tuple)) and all(_is_int(i) for i in v),
        "a list of integers",
    ),
    "None": (lambda v: v is None, "null"),
}


def annotation_check(annotation: Any) -> tuple[list, str] | None:
    """(tests, description) for an annotation string of the understood forms, else None."""
    if not isinstance(annotation, str):
        return None
    atoms = [a.strip() for a in annotation.split("|")]
    if not all(a in _ATOMS for a in atoms):
        return None
    return [_ATOMS[a][0] for a in atoms], " or ".join(_ATOMS[a][1] for a in atoms)


def check_value(name: str, value: Any, annotation: Any, where: str) -> None:
    """Refuse `value` for argument `name` unless it has the annotated type (and, for the names
    above, lies in range); the message names `where` + the argument."""
    check = annotation_check(annotation)
    if check is not None:
        tests, what = check
        if not any(t(value) for t in tests):
            raise ChainruleError(f"{where}{name} must be {what}, got {value!r}")
    items = value if isinstance(value, (list, tuple)) else [value]
    if name in POSITIVE and any(_is_int(v) and v < 1 for v in items):
        raise ChainruleError(f"{where}{name} must be positive, got {value!r}")
    if name in NON_NEGATIVE and _is_int(value) and value < 0:
        raise ChainruleError(f"{where}{name} must be >= 0, got {value!r}")
    if name in POSITIVE_FLOATS and _is_number(value) and value <= 0:
        raise ChainruleError(f"{where}{name} must be > 0, got {value!r}")
    if name in NON_NEGATIVE_FLOATS and _is_number(value) and value < 0:
        raise ChainruleError(f"{where}{name} must be >= 0, got {value!r}")
    if name == "dropout" and _is_number(value) and not 0 <= value < 1:
        raise ChainruleError(f"{where}dropout must be in [0, 1), got {value!r}")
    if name == "seed" and value is not None and _is_int(value):
        check_seed(value, f"{where}seed")
    if name == "num_values" and _is_int(value) and value == 1:
        raise ChainruleError(f"{where}num_values must be 2 or more (a single value has nothing to model)")


def check_image_matches(model: Any) -> None:
    """`image_shape` describes the event: its product must equal the number of values per example
    (a config.json with image_shape [7, 7] for a 784-dimensional model is refused)."""
    image, event = model.image_shape, model.event_shape
    if not image or not event or None in event:
        return
    if math.prod(image) != math.prod(event):
        raise ChainruleError(
            f"model {model.registry_name!r}: image_shape {list(image)} holds {math.prod(image)} values but"
            f" the model has {math.prod(event)} per example (dim); make their sizes agree"
        )
