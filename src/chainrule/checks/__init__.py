"""The contract checks, as scikit-learn's check_estimator: plain functions that take a model and
raise `ContractViolation` (an AssertionError naming the model and the check) when it breaks the
one contract. `check_model` runs them all on one model; tests/contract runs them on every
registered model. Checks that do not apply to a model (by its declared capabilities) raise
`NotApplicable` and are skipped.

    from chainrule.checks import check_model
    check_model("fvsbn")          # built from FVSBN.tiny_config()
    check_model(my_trained_model)  # any Model instance
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chainrule.checks.behaviour import (
    check_bad_input,
    check_capabilities,
    check_completion_keeps_observed,
    check_device_and_dtype,
    check_fast_equals_generic,
    check_mode_independence,
    check_save_load,
    check_uses_condition,
)
from chainrule.checks.exactness import (
    check_autoregressive_dependency,
    check_normalisation,
    check_sample_frequencies,
    check_terms_sum_to_log_prob,
)
from chainrule.checks.support import ContractViolation, NotApplicable, tiny_model
from chainrule.errors import first_line
from chainrule.models.base import Model

#: every check, by name, in the order `check_model` runs them
CHECKS: dict[str, Callable[[Model], None]] = {
    f.__name__: f
    for f in (
        check_capabilities,
        check_normalisation,
        check_terms_sum_to_log_prob,
        check_autoregressive_dependency,
        check_fast_equals_generic,
        check_sample_frequencies,
        check_save_load,
        check_completion_keeps_observed,
        check_uses_condition,
        check_bad_input,
        check_device_and_dtype,
        check_mode_independence,
    )
}


def run_check(model: Model, name: str) -> bool:
    """Run check `name` on `model`: True when it ran and passed, False when it does not apply;
    any other error inside the check becomes a ContractViolation naming the model and the check."""
    try:
        CHECKS[name](model)
    except NotApplicable:
        return False
    except ContractViolation:
        raise
    except Exception as e:  # noqa: BLE001 - an unexpected error is a violation too, named as such
        first = first_line(e)
        raise ContractViolation(
            f"model {model.registry_name or type(model).__name__!r} fails {name}: {type(e).__name__}: {first}"
        ) from e
    return True


def check_model(model: Model | str | type[Model], *, checks: Iterable[str] | None = None) -> list[str]:
    """Run the contract checks (all, or those named in `checks`) on `model` — an instance, or a
    registered name/class built from its `tiny_config()` — and return the names of the checks
    that ran. Raises ContractViolation on the first check that fails."""
    instance = model if isinstance(model, Model) else tiny_model(model)
    names = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {list(CHECKS)}")
    return [name for name in names if run_check(instance, name)]


__all__ = ["CHECKS", "ContractViolation", "NotApplicable", "check_model", "run_check", "tiny_model", *CHECKS]
