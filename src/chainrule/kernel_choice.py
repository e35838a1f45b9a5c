"""Choose between equivalent kernels by timing them where they run, as cuDNN's benchmark mode does.

Some choices have no fixed answer on a given machine: on the 2-core EPYC VM these libraries are
developed on, two threads run a matmul 1.8-1.9x as fast as one in one state and 1.4-1.6x in
another, minutes apart, and which of two kernels is faster flips with it. `fastest` times the
candidates on the call's own tensors (alternating, the median of a few runs each), remembers the
winner per key, and measures again once the answer is `RECHECK_SECONDS` old. The candidates must
compute the same thing (up to rounding); with `torch.use_deterministic_algorithms(True)` the
first candidate is taken without timing, so that a seeded run does not depend on the machine's
state.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping

import torch

#: seconds after which a remembered choice is measured again (the machine's state may have moved)
RECHECK_SECONDS = 20.0
#: timed runs of each candidate (after one untimed run each)
REPEATS = 5

_chosen: dict[Hashable, tuple[str, float]] = {}


def fastest(key: Hashable, candidates: Mapping[str, Callable[[], object]]) -> str:
    """The name of the fastest of `candidates` (name -> a call that runs the kernel once) for
    `key`: remembered, or timed now when `key` is new or its answer is `RECHECK_SECONDS` old."""
    first = next(iter(candidates))
    if torch.are_deterministic_algorithms_enabled() or len(candidates) == 1:
        return first
    now = time.monotonic()
    known = _chosen.get(key)
    if known is not None and now - known[1] < RECHECK_SECONDS:
        return known[0]
    seconds = timed(candidates)
    winner = min(seconds, key=seconds.__getitem__)
    _chosen[key] = (winner, time.monotonic())
    return winner


def timed(candidates: Mapping[str, Callable[[], object]], repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds of each candidate, run in turn (one untimed run each first), so that a change
    in the machine's speed while timing affects them all alike."""
    runs: dict[str, list[float]] = {name: [] for name in candidates}
    for run in candidates.values():
        run()
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in runs.items()}


def forget() -> None:
    """Drop every remembered choice (tests; or after changing the number of threads by hand,
    though the callers' keys already include it)."""
    _chosen.clear()
