"""Choose between equivalent kernels by timing them where they run, as cuDNN's benchmark mode does.

Some choices have no fixed answer on a given machine: on the 2-core EPYC VM these libraries are
developed on, two threads run a matmul 1.8-1.9x as fast as one in one state and 1.4-1.6x in
another, minutes apart, and which of two kernels is faster flips with it. Timing a kernel alone
misleads (FVSBN-784's masked layer, batch 128: its row blocks and one matmul within 5 % of each
other alone, forward and backward, while a whole training step was 12 % faster with the blocks:
what the step around it leaves in the caches differs), and so does the interval between calls
(it holds whatever else runs between them). So the caller times each call in its place: from the
kernel's forward to the end of its backward (`report`). Calls with one key alternate between the
candidates (`in_use`) until each has `TRIALS` timings; the one with the shorter median is then
used until the answer is `RECHECK_SECONDS` old. The candidates must compute the same thing (up to
rounding); with `torch.use_deterministic_algorithms(True)` the first is always taken, so that a
seeded run does not depend on the machine's state.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

#: seconds after which a choice is tried out again (the machine's state may have moved)
RECHECK_SECONDS = 20.0
#: timed calls of each candidate per trial (after one untimed call each)
TRIALS = 6


@dataclass
class _Trial:
    """What is known of one key: the winner and since when, and the timings of the trial."""

    winner: str | None = None
    decided_at: float = 0.0
    seconds: dict[str, list[float]] = field(default_factory=dict)


_trials: dict[Hashable, _Trial] = {}


def in_use(key: Hashable, candidates: Sequence[str]) -> tuple[str, bool]:
    """The candidate to run this call with `key`, and whether to time the call and `report` it:
    the remembered winner, untimed; or, during a trial, the candidate with the fewest timings so
    far (the calls alternate), timed."""
    if torch.are_deterministic_algorithms_enabled() or len(candidates) == 1:
        return candidates[0], False
    now = time.perf_counter()
    trial = _trials.setdefault(key, _Trial())
    if trial.winner is not None and now - trial.decided_at < RECHECK_SECONDS:
        return trial.winner, False
    counts = {name: len(trial.seconds.get(name, [])) for name in candidates}
    if min(counts.values()) > TRIALS:  # one timing each to warm up, then TRIALS that count
        medians = {name: statistics.median(trial.seconds[name][1:]) for name in candidates}
        _trials[key] = _Trial(winner=min(medians, key=medians.__getitem__), decided_at=now)
        return _trials[key].winner, False
    return min(candidates, key=counts.__getitem__), True


def report(key: Hashable, name: str, seconds: float) -> None:
    """One timed call of candidate `name` for `key` (asked for by `in_use`)."""
    trial = _trials.get(key)
    if trial is not None:
        trial.seconds.setdefault(name, []).append(seconds)


def forget() -> None:
    """Drop every remembered choice and trial (tests)."""
    _trials.clear()
