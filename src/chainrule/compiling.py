"""The one `torch.compile` fallback: compile a function, and run it eagerly if compiling fails.

torch.compile needs a C++ compiler and supports most but not all operations; a failure to build
kernels must never stop a training run or an evaluation. Results are the same either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from chainrule.errors import ChainruleError


def compiled_or_eager(
    fn: Callable[..., Any], what: str = "training", static: bool = True
) -> Callable[..., Any]:
    """`torch.compile(fn)`; if compiling fails, warn once ("... running `what` eagerly") and call
    `fn` itself from then on. chainrule's own errors (bad input) pass through unchanged.

    `static` compiles one graph per input shape (`dynamic=False`), for functions called with
    several shapes. Otherwise torch's default: static for the first shape, one graph with dynamic
    sizes if others come. That suits a training step, whose batches all have one shape
    (drop_last), and saves a configuration patch torch wraps around every call of a
    `dynamic=False` function (11 us a forward call, 16 us a training step, one thread,
    2026-12-06: 0.3-0.7 % of a step of FVSBN-784)."""
    compiled = torch.compile(fn, dynamic=False) if static else torch.compile(fn)
    state = {"broken": False}

    def call(*args: Any) -> Any:
        if not state["broken"]:
            try:
                return compiled(*args)
            except ChainruleError:
                raise
            except Exception as e:  # torch.compile raises many types while building kernels
                # bad input stopped by a check inside compiled code: the eager call says what is wrong
                out = fn(*args)
                state["broken"] = True
                warnings.warn(
                    f"torch.compile failed ({type(e).__name__}); running {what} eagerly", stacklevel=2
                )
                return out
        return fn(*args)

    return call
