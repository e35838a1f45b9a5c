"""The contract's behaviour checks: samplers agree, save/load is exact, completion keeps what is
observed, conditions matter, bad input is refused clearly, device/dtype/mode do not change
log_prob, and the declared capabilities hang together."""

from __future__ import annotations

import copy
import json
import tempfile

import torch

from chainrule.checks.support import (
    NotApplicable,
    condition,
    device_of,
    draw,
    fail,
    other_condition,
    seeded,
    takes,
)
from chainrule.errors import ChainruleError
from chainrule.models.base import CONDITIONS, VALUE_TYPES, Model, models_sequences


def _log_prob(model: Model, x: torch.Tensor, cond=None) -> torch.Tensor:
    """log_prob with the global random stream reset (stochastic estimates repeat exactly)."""
    seeded()
    with torch.no_grad():
        return model.log_prob(x, cond)


def check_fast_equals_generic(model: Model) -> None:
    """The same seed gives identical samples with method="fast" and method="generic"."""
    if not takes(model.sample, "method"):
        raise NotApplicable("sample() has one method only")
    cond = condition(model, 6)
    fast = draw(model, 6, cond, seed=3, length=5, method="fast")
    generic = draw(model, 6, cond, seed=3, length=5, method="generic")
    exact = model.value_type != "continuous"  # real values: the two paths may round differently
    if fast.shape != generic.shape or not (
        torch.equal(fast, generic) if exact else torch.allclose(fast, generic, rtol=1e-5, atol=1e-5)
    ):
        raise fail(model, "check_fast_equals_generic", "fast and generic samplers differ for the same seed")


def check_save_load(model: Model) -> None:
    """chainrule.persistence save -> load gives the same parameters bit for bit and the same log_prob."""
    from chainrule.persistence import load, save

    x, cond = draw(model, 5, condition(model, 5)), condition(model, 5)
    with tempfile.TemporaryDirectory() as folder:
        save(model, folder)
        loaded = load(folder)
    before, after = model.state_dict(), loaded.state_dict()
    if sorted(before) != sorted(after):
        raise fail(model, "check_save_load", f"state_dict keys differ: {sorted(set(before) ^ set(after))}")
    for k, v in before.items():
        w = after[k]
        if v.dtype != w.dtype or v.shape != w.shape or not torch.equal(v.cpu(), w.cpu()):
            raise fail(model, "check_save_load", f"{k} differs after save -> load")
    loaded.to(device_of(model))
    if not torch.equal(_log_prob(model, x, cond), _log_prob(loaded, x, cond)):
        raise fail(model, "check_save_load", "log_prob differs after save -> load")


def check_completion_keeps_observed(model: Model) -> None:
    """sample(given=, mask=) never changes observed values, and NaN in the unobserved entries of
    `given` is accepted (the one rule). Sequence models complete prefixes."""
    n, cond = 6, condition(model, 6)
    x = draw(model, n, cond, seed=1, length=4)
    flat = x.reshape(n, -1)
    if models_sequences(model):
        mask = torch.zeros(flat.shape[1], dtype=torch.bool)
        mask[:2] = True
        full = mask.expand(n, -1)
    else:
        g = torch.Generator().manual_seed(2)
        full = mask = torch.rand(flat.shape, generator=g) < 0.5
    given = flat.double().cpu().clone()
    given[~full] = float("nan")
    g = torch.Generator(device=device_of(model)).manual_seed(4)
    try:
        out = model.sample(n, cond, given=given.to(x.device), mask=mask.to(x.device), generator=g)
    except ChainruleError as e:
        raise fail(
            model, "check_completion_keeps_observed", f"refused NaN in unobserved entries ({e})"
        ) from e
    out = out.reshape(n, -1).double().cpu()
    if out.shape != flat.shape or not torch.equal(out[full], flat.double().cpu()[full]):
        raise fail(model, "check_completion_keeps_observed", "completion changed observed values")
    if torch.isnan(out).any():
        raise fail(model, "check_completion_keeps_observed", "completion left NaN in its output")


def check_uses_condition(model: Model) -> None:
    """A conditional model's log_prob changes with its condition; an unconditional model refuses
    a condition with a ChainruleError. (Prefix-conditioned sequence models: not applicable.)"""
    if model.conditioned_on == "prefix":
        raise NotApplicable("the condition is a prefix of the sequence itself")
    x = draw(model, 6, condition(model, 6))
    if model.conditioned_on == "nothing":
        try:
            _log_prob(model, x, torch.zeros(x.shape[0], device=x.device))
        except ChainruleError:
            return
        raise fail(model, "check_uses_condition", "an unconditional model accepted a cond")
    cond = condition(model, 6)
    if torch.equal(_log_prob(model, x, cond), _log_prob(model, x, other_condition(model, cond))):
        raise fail(model, "check_uses_condition", "log_prob does not change when the condition changes")


def _expect_error(model: Model, x: torch.Tensor, cond, what: str) -> None:
    try:
        _log_prob(model, x, cond)
    except ChainruleError:
        return
    except Exception as e:  # noqa: BLE001 - any other error is the violation
        raise fail(
            model, "check_bad_input", f"{what}: raised {type(e).__name__} ({e}), not ChainruleError"
        ) from e
    raise fail(model, "check_bad_input", f"{what}: accepted without an error")


def check_bad_input(model: Model) -> None:
    """Wrong shape, NaN, and (discrete models) out-of-range or non-integer values each raise a
    ChainruleError, not a torch/numpy error."""
    cond = condition(model, 3)
    x = draw(model, 3, cond).double()
    wrong = torch.cat([x, x[..., :1]], -1) if not models_sequences(model) else x[:, :, None].repeat(1, 1, 2)
    _expect_error(model, wrong.reshape(3, -1, 2) if models_sequences(model) else wrong, cond, "wrong shape")
    nan = x.clone().reshape(3, -1)
    nan[0, 0] = float("nan")
    _expect_error(model, nan, cond, "NaN")
    if model.value_type == "continuous":
        return
    sizes = model.values_per_dimension()
    top = x.clone().reshape(3, -1)
    top[0, 0] = sizes[0] if sizes is not None else model.num_values
    _expect_error(model, top, cond, "a value past the last category")
    half = x.clone().reshape(3, -1)
    half[0, 0] = 0.5
    _expect_error(model, half, cond, "a non-integer value")


def check_device_and_dtype(model: Model) -> None:
    """log_prob is a (B,) floating tensor on the model's device; model.double() gives the same
    log_prob to 1e-5; integer and float inputs of a discrete model give the same log_prob."""
    cond = condition(model, 5)
    x = draw(model, 5, cond)
    logp = _log_prob(model, x, cond)
    if logp.shape != (5,) or not logp.is_floating_point() or logp.device != device_of(model):
        raise fail(
            model,
            "check_device_and_dtype",
            f"log_prob gave {tuple(logp.shape)} {logp.dtype} on {logp.device}, expected (5,) float"
            f" on {device_of(model)}",
        )
    double = _log_prob(copy.deepcopy(model).double(), x.double(), cond)
    atol = 1e-4 if model.exact_log_prob else 0.5  # an estimate draws other random numbers in float64
    if not torch.allclose(double.double(), logp.double(), rtol=1e-5, atol=atol):
        gap = float((double.double() - logp.double()).abs().max())
        raise fail(model, "check_device_and_dtype", f"model.double() changes log_prob by {gap:.3g}")
    if model.value_type != "continuous":
        as_int, as_float = _log_prob(model, x.long(), cond), _log_prob(model, x.float(), cond)
        if not torch.allclose(as_int, as_float, rtol=0, atol=1e-6):
            raise fail(model, "check_device_and_dtype", "integer and float inputs give different log_prob")


def check_mode_independence(model: Model) -> None:
    """log_prob is the same in train and eval mode, with and without gradients."""
    cond = condition(model, 5)
    x = draw(model, 5, cond)
    was_training = model.training
    results = {}
    try:
        for mode in ("eval", "train"):
            model.train(mode == "train")
            results[f"{mode}, no grad"] = _log_prob(model, x, cond)
            seeded()
            with torch.enable_grad():
                results[f"{mode}, grad"] = model.log_prob(x, cond).detach()
    finally:
        model.train(was_training)
    reference = results["eval, no grad"]
    for what, value in results.items():
        if not torch.allclose(value, reference, rtol=1e-5, atol=1e-5):
            raise fail(model, "check_mode_independence", f"log_prob in {what} differs from eval, no grad")


def check_capabilities(model: Model) -> None:
    """The declared capabilities hang together and are JSON-serialisable."""
    problems = []
    if model.value_type not in VALUE_TYPES:
        problems.append(f"value_type {model.value_type!r} not in {VALUE_TYPES}")
    if model.conditioned_on not in CONDITIONS:
        problems.append(f"conditioned_on {model.conditioned_on!r} not in {CONDITIONS}")
    if (model.num_values == 0) != (model.value_type == "continuous"):
        problems.append(f"num_values {model.num_values} with value_type {model.value_type!r}")
    if (model.num_classes > 0) != (model.conditioned_on == "class"):
        problems.append(f"num_classes {model.num_classes} with conditioned_on {model.conditioned_on!r}")
    if model.image_shape is not None and (
        models_sequences(model) or _prod(model.image_shape) != _prod(model.event_shape)
    ):
        problems.append(f"image_shape {model.image_shape} does not hold event_shape {model.event_shape}")
    if model.ensemble_keyword is not None and not takes(model.log_prob, model.ensemble_keyword):
        problems.append(f"ensemble_keyword {model.ensemble_keyword!r} is not a keyword of log_prob")
    if not isinstance(model.ensemble_size, int) or model.ensemble_size < 1:
        problems.append(f"ensemble_size {model.ensemble_size!r} is not a positive int")
    elif model.ensemble_keyword is None and model.ensemble_size != 1:
        problems.append(f"ensemble_size {model.ensemble_size} without an ensemble_keyword")
    sizes = model.values_per_dimension()
    if sizes is not None and (len(sizes) != _prod(model.event_shape) or max(sizes) > model.num_values):
        problems.append(f"values_per_dimension() {sizes} does not fit event_shape/num_values")
    try:
        json.dumps(model.capabilities())
    except (TypeError, ValueError) as e:
        problems.append(f"capabilities() is not JSON-serialisable ({e})")
    if problems:
        raise fail(model, "check_capabilities", "; ".join(problems))


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
