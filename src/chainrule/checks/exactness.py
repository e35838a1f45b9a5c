"""Exactness is tested, not assumed: probabilities sum to 1, the autoregressive dependency holds,
and sample frequencies match exp(log_prob)."""

from __future__ import annotations

import math

import torch

from chainrule.checks.support import (
    ContractViolation,
    NotApplicable,
    condition,
    configurations,
    draw,
    event_size,
    fail,
    log_prob_in_chunks,
    seeded,
    sequence_length,
)
from chainrule.models.base import Model, models_sequences

#: |sum of probabilities - 1| allowed for exact models (float32 log_prob summed in float64)
EXACT_TOLERANCE = 1e-4
#: the same for models whose log_prob is a declared estimate (the VAE's importance bound)
ESTIMATE_TOLERANCE = 0.1


def check_normalisation(model: Model) -> None:
    """Discrete models: exp(log_prob) over every configuration sums to 1 (for a fixed condition;
    for sequences, over every sequence of a short length). Continuous models: the density
    integrates to 1 (quadrature in 1-D, a grid in 2-D)."""
    cond = condition(model, 1)
    if model.value_type == "continuous":
        total = _integral(model, cond)
        tol = 2e-3 if event_size(model) == 1 else 2e-2
    else:
        lengths = [1, sequence_length(model.num_values)] if models_sequences(model) else [None]
        totals = []
        for length in lengths:
            seeded()
            logp = log_prob_in_chunks(model, configurations(model, length), cond)
            totals.append(float(torch.logsumexp(logp, 0).exp()))
        total = max(totals, key=lambda t: abs(t - 1))
        tol = EXACT_TOLERANCE
    if not model.exact_log_prob:
        tol = max(tol, ESTIMATE_TOLERANCE)
    if not math.isfinite(total) or abs(total - 1) > tol:
        raise fail(model, "check_normalisation", f"probabilities sum to {total:.6f}, not 1 (tolerance {tol})")


def _integral(model: Model, cond) -> float:
    """The integral of exp(log_prob) over a box that holds the model's samples with margin."""
    d = event_size(model)
    if d > 2:
        raise ContractViolation(
            f"model {model.registry_name!r}: its tiny_config is {d}-dimensional; give a continuous"
            " model a 1-D or 2-D tiny_config so that its density can be integrated"
        )
    seeded()
    many = None if cond is None else cond.expand(2000, *cond.shape[1:])
    x = draw(model, 2000, many).reshape(2000, d).double()
    span = x.max(0).values - x.min(0).values
    lo, hi = x.min(0).values - span - 1.0, x.max(0).values + span + 1.0
    points = 20001 if d == 1 else 301
    axes = [torch.linspace(float(lo[i]), float(hi[i]), points, dtype=torch.float64) for i in range(d)]
    grid = torch.cartesian_prod(*axes).reshape(-1, d) if d == 2 else axes[0][:, None]
    dens = log_prob_in_chunks(model, grid.to(x.device, torch.get_default_dtype()), cond, 8192).exp().cpu()
    if d == 1:
        return float(torch.trapezoid(dens, axes[0]))
    dens = dens.reshape(points, points)
    return float(torch.trapezoid(torch.trapezoid(dens, axes[1], dim=1), axes[0]))


def check_terms_sum_to_log_prob(model: Model) -> None:
    """For a model with a `sampling_order()`: its chain-rule terms (`log_prob_terms`, (B, D),
    which exact conditional likelihoods such as a completion's are read from) sum to its
    `log_prob` (computed apart, by the head's `log_prob_sum`)."""
    if model.sampling_order() is None:
        raise NotApplicable("no single sampling order")
    cond = condition(model, 5)
    x = draw(model, 5, cond)
    seeded()
    with torch.no_grad():
        total = model.log_prob(x, cond)
        terms = model.log_prob_terms(x, cond)
    if terms.shape != (x.shape[0], len(model.sampling_order())):
        raise fail(model, "check_terms_sum_to_log_prob", f"log_prob_terms has shape {tuple(terms.shape)}")
    if not torch.allclose(terms.sum(-1), total, rtol=1e-5, atol=1e-5):
        gap = float((terms.sum(-1) - total).abs().max())
        raise fail(model, "check_terms_sum_to_log_prob", f"log_prob_terms sum to {gap:.3g} nats off log_prob")


def check_autoregressive_dependency(model: Model) -> None:
    """For a model with a `sampling_order()`: the conditioner's output for dimension i does not
    change when any dimension j not before i in the order changes (a finite-difference Jacobian,
    which also covers one-hot inputs that carry no gradient)."""
    order = model.sampling_order()
    if order is None:
        raise NotApplicable("no single sampling order")
    cond = condition(model, 4)
    x = draw(model, 4, cond).reshape(4, -1).to(torch.get_default_dtype())
    sizes = model.values_per_dimension()
    position = {d: t for t, d in enumerate(order)}
    with torch.no_grad():
        base = _conditioner(model, x, cond)
        for j in range(x.shape[1]):
            moved = x.clone()
            moved[:, j] = (moved[:, j] + 1) % sizes[j] if sizes is not None else moved[:, j] + 1.0
            change = (_conditioner(model, moved, cond) - base).abs().reshape(4, x.shape[1], -1)
            change = change.amax(dim=(0, 2))
            for i in range(x.shape[1]):
                if position[j] >= position[i] and float(change[i]) > 1e-6 * (1 + float(base.abs().max())):
                    raise fail(
                        model,
                        "check_autoregressive_dependency",
                        f"the conditional of dimension {i} changes with dimension {j}, which is not"
                        f" before it in the sampling order (change {float(change[i]):.3g})",
                    )


def _conditioner(model: Model, x: torch.Tensor, cond) -> torch.Tensor:
    """The autoregressive conditioner's per-dimension parameters (cond passed only when given)."""
    dtype = next(model.parameters()).dtype
    x = x.to(dtype)
    return model.conditioner(x) if cond is None else model.conditioner(x, cond)


def check_sample_frequencies(model: Model, n: int = 4000) -> None:
    """The frequencies of `n` samples (fixed seed) match exp(log_prob): the total-variation distance
    of the full joint (at most 256 configurations) or of each one-dimensional marginal is within
    a few standard errors of its expectation under exact sampling."""
    if model.value_type == "continuous":
        raise NotApplicable("continuous values: no enumeration")
    if not model.exact_log_prob:
        raise NotApplicable("log_prob is a declared estimate")
    length = 2 if models_sequences(model) and model.num_values <= 64 else 1
    configs = configurations(model, length if models_sequences(model) else None)
    cond = condition(model, 1)
    probs = log_prob_in_chunks(model, configs, cond).exp()
    probs = probs / probs.sum()
    samples = draw(model, n, None if cond is None else cond.expand(n, *cond.shape[1:]), length=length)
    samples = samples.reshape(n, -1).to(configs)
    if configs.shape[0] <= 256:
        index = _row_index(samples, configs)
        freq = torch.bincount(index, minlength=configs.shape[0]).double() / n
        _compare(model, freq, probs, n, "the joint")
        return
    for d in range(configs.shape[1]):
        k = int(configs[:, d].max()) + 1
        marginal = torch.zeros(k, dtype=torch.float64, device=probs.device)
        marginal.index_add_(0, configs[:, d].long(), probs)
        freq = torch.bincount(samples[:, d].long(), minlength=k).double() / n
        _compare(model, freq, marginal, n, f"dimension {d}'s marginal")


def _row_index(samples: torch.Tensor, configs: torch.Tensor) -> torch.Tensor:
    """The index of each sample among the enumerated configurations (mixed-radix code)."""
    sizes = configs.max(0).values.long() + 1
    radix = torch.cumprod(torch.cat([sizes.flip(0)[:-1].new_ones(1), sizes.flip(0)[:-1]]), 0).flip(0)
    return (samples.long() * radix).sum(1)


def _compare(model: Model, freq: torch.Tensor, probs: torch.Tensor, n: int, what: str) -> None:
    tv = 0.5 * float((freq.cpu() - probs.cpu()).abs().sum())
    expected = 0.5 * float((2 * probs * (1 - probs) / (math.pi * n)).sqrt().sum())
    tol = 3 * expected + 0.01
    if tv > tol:
        raise fail(
            model,
            "check_sample_frequencies",
            f"{what}: sample frequencies are {tv:.4f} from exp(log_prob) in total variation"
            f" (tolerance {tol:.4f} for {n} samples)",
        )
