"""Checking what a Bayesian network is built from: variables with their states, and CPD tables.

Kept apart from the network so that every malformed input gets one clear ChainruleError that
names the variable (and, for a CPD row that does not sum to one, the parent states of the row).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import torch

from chainrule.errors import ChainruleError

ROW_TOLERANCE = 1e-6
MAX_TABLE_CELLS = 10**7  # cells of one CPD (80 MB of float64)

VariableSpec = Mapping[str, Sequence[str] | int] | Sequence[tuple[str, Sequence[str] | int]]


def short_list(items: Sequence[str], limit: int = 12) -> str:
    """`items` joined by commas, cut after `limit` with the total count."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def parse_variables(variables: VariableSpec) -> tuple[list[str], dict[str, list[str]]]:
    """(names in column order, name -> state names) from a mapping name -> states-or-cardinality,
    or a list of (name, states-or-cardinality) pairs (what config.json holds: JSON sorts keys)."""
    if isinstance(variables, Mapping):
        items = list(variables.items())
    elif isinstance(variables, Sequence) and not isinstance(variables, str):
        items = [tuple(v) if isinstance(v, (list, tuple)) and len(v) == 2 else (v, None) for v in variables]
    else:
        items = []
    if not items:
        raise ChainruleError("variables must be a non-empty mapping name -> state names or cardinality")
    names: list[str] = []
    state_names: dict[str, list[str]] = {}
    for name, spec in items:
        if not isinstance(name, str) or not name:
            raise ChainruleError(f"variable names must be non-empty strings, got {name!r}")
        if name in state_names:
            raise ChainruleError(f"variable {name!r} is given twice")
        names.append(name)
        state_names[name] = _states(name, spec)
    return names, state_names


def _states(name: str, spec: Sequence[str] | int | None) -> list[str]:
    if isinstance(spec, bool):
        raise ChainruleError(f"variable {name!r}: expected state names or a cardinality, got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ChainruleError(f"variable {name!r} has cardinality {spec}; it must be at least 1")
        return [str(i) for i in range(spec)]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        states = [str(s) for s in spec]
        if not states:
            raise ChainruleError(f"variable {name!r} has no states")
        if len(set(states)) != len(states):
            dup = sorted({s for s in states if states.count(s) > 1})
            raise ChainruleError(f"variable {name!r} repeats state name(s) {dup}")
        return states
    raise ChainruleError(f"variable {name!r}: expected a list of state names or a cardinality")


def max_table_cells() -> int:
    """The largest CPD (cells) a network may hold: MAX_TABLE_CELLS, or the environment variable
    CHAINRULE_MAX_TABLE_CELLS (tables grow exponentially with the number of parents)."""
    env = os.environ.get("CHAINRULE_MAX_TABLE_CELLS")
    if not env:
        return MAX_TABLE_CELLS
    try:
        return int(env)
    except ValueError:
        raise ChainruleError(f"CHAINRULE_MAX_TABLE_CELLS must be an integer, got {env!r}") from None


def check_table_size(name: str, parent_names: Sequence[str], cards: Sequence[int]) -> None:
    """Refuse a CPD of more cells than `max_table_cells()`, naming the node and the table size.

    `cards` are the cardinalities of the parents then of the node."""
    size = math.prod(cards)
    limit = max_table_cells()
    if size > limit:
        raise ChainruleError(
            f"the CPD of {name!r} ({len(parent_names)} parents) would hold {size:,} cells"
            f" ({' x '.join(str(c) for c in cards)}), over the limit of {limit:,}"
            " (set CHAINRULE_MAX_TABLE_CELLS to raise it)"
        )


def check_cpd(
    values: torch.Tensor | Sequence,
    name: str,
    expected: tuple[int, ...],
    parent_names: Sequence[str],
    parent_states: Sequence[Sequence[str]],
) -> torch.Tensor:
    """The CPD of `name` as a contiguous float64 tensor of shape `expected`, or a clear error."""
    try:
        t = torch.as_tensor(values, dtype=torch.float64).detach().cpu().clone().contiguous()
    except (TypeError, ValueError, RuntimeError) as e:
        raise ChainruleError(f"CPD of {name!r} is not a numeric table: {e}") from None
    if tuple(t.shape) != expected:
        raise ChainruleError(
            f"CPD of {name!r} has shape {tuple(t.shape)}; expected {expected} ="
            f" (cardinalities of parents {list(parent_names)}..., cardinality of {name!r})"
        )
    if not torch.isfinite(t).all():
        raise ChainruleError(f"CPD of {name!r} contains NaN or infinite values")
    if (t < 0).any():
        raise ChainruleError(f"CPD of {name!r} has negative entries (minimum {t.min().item():.6g})")
    sums = t.sum(-1)
    bad = (sums - 1).abs() > ROW_TOLERANCE
    if bad.any():
        where = tuple(int(j) for j in bad.nonzero()[0]) if bad.dim() else ()
        given = ", ".join(f"{p}={states[s]}" for p, states, s in zip(parent_names, parent_states, where))
        row = f"given ({given})" if given else "(no parents)"
        raise ChainruleError(
            f"CPD of {name!r}: the row {row} sums to {float(sums[where]):.9g}, not 1"
            f" (tolerance {ROW_TOLERANCE:g}); {int(bad.sum())} bad row(s)"
        )
    return t


def default_table(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """A conditional table of `shape` (rows over the last axis): uniform without a generator, else
    rows drawn from a flat Dirichlet (random but valid: what `seed=` and `tiny_config` build)."""
    if generator is None:
        return torch.full(shape, 1.0 / shape[-1], dtype=torch.float64)
    g = -torch.log(torch.rand(shape, generator=generator, dtype=torch.float64).clamp_min(1e-12))
    return g / g.sum(-1, keepdim=True)


def seeded(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with `seed`, or None."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ChainruleError(f"seed must be an integer or None, got {seed!r}")
    return torch.Generator().manual_seed(seed)
