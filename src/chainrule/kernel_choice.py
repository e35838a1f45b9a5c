"""Choose between equivalent kernels by timing them where they run, as cuDNN's benchmark mode does.

Some choices have no fixed answer on a given machine: on the 2-core EPYC VM these libraries are
developed on, two threads run a matmul 1.8-1.9x as fast as one in one state and 1.4-1.6x in
another, tens of seconds to minutes apart, and which of two kernels is faster flips with it.
Timing a kernel alone misleads (FVSBN-784's masked layer, batch 128: its row blocks and one
matmul within 5 % of each other alone, forward and backward, while a whole training step was
12 % faster with the blocks: what the step around it leaves in the caches differs), and so does
the interval between calls (it holds whatever else runs between them). So each call is timed
in its place (`begin`, a `Span`): from the kernel's forward to the end of the optimizer step after
its backward, or of the backward when no step follows. Calls with one key alternate between the
candidates (`in_use`) until each has `TRIALS` timings; the one
with the shorter median is then used until the answer is `RECHECK_SECONDS` old (or ten times as
old as its trial took). The candidates must compute the same thing (up to rounding); with
`torch.use_deterministic_algorithms(True)` the first is always taken, so that a seeded run does
not depend on the machine's state.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

#: seconds after which a choice is tried out again (the machine's state may have moved: on the
#: 2-core VM within tens of seconds), or ten times as long as its trial took, if that is longer
RECHECK_SECONDS = 5.0
#: the least time between trials, as a multiple of a trial's length (so they cost little)
RECHECK_TRIALS = 10.0
#: timed calls of each candidate per trial (after one untimed call each)
TRIALS = 6


@dataclass
class _Trial:
    """What is known of one key: the winner and since when, and the timings of the trial."""

    winner: str | None = None
    recheck_at: float = 0.0
    started: float | None = None
    seconds: dict[str, list[float]] = field(default_factory=dict)


_trials: dict[Hashable, _Trial] = {}


def in_use(key: Hashable, candidates: Sequence[str]) -> tuple[str, bool]:
    """The candidate to run this call with `key`, and whether to time the call and `report` it:
    the remembered winner, untimed; or, during a trial, the candidate with the fewest timings so
    far (the calls alternate), timed."""
    if torch.are_deterministic_algorithms_enabled() or len(candidates) == 1:
        return candidates[0], False
    close(key)  # the previous call's span, ended by its backward if no optimizer step followed
    now = time.perf_counter()
    trial = _trials.setdefault(key, _Trial())
    if trial.winner is not None and now < trial.recheck_at:
        return trial.winner, False
    if trial.started is None:
        trial.started = now
    counts = {name: len(trial.seconds.get(name, [])) for name in candidates}
    if min(counts.values()) > TRIALS:  # one timing each to warm up, then TRIALS that count
        medians = {name: statistics.median(trial.seconds[name][1:]) for name in candidates}
        wait = max(RECHECK_SECONDS, RECHECK_TRIALS * (now - trial.started))
        _trials[key] = _Trial(winner=min(medians, key=medians.__getitem__), recheck_at=now + wait)
        return _trials[key].winner, False
    return min(candidates, key=counts.__getitem__), True


def report(key: Hashable, name: str, seconds: float) -> None:
    """One timed call of candidate `name` for `key` (asked for by `in_use`)."""
    trial = _trials.get(key)
    if trial is not None:
        trial.seconds.setdefault(name, []).append(seconds)


@dataclass
class Span:
    """A timed training call: from its forward to the end of the optimizer step that follows
    (the kernel can slow that step: with FVSBN's row blocks fused Adam took 1.3 against 0.3 ms in
    the VM's slow state, also when their weight gradient was one dense matmul's), or to the end
    of its backward when no optimizer step follows before the next call with the key."""

    name: str
    start: float
    end: float | None = None


_open: dict[Hashable, Span] = {}


def begin(key: Hashable, name: str) -> Span:
    """Start timing a call of candidate `name` for `key`; `Span.end` is set by the caller at the
    end of the backward and moved to the end of the next optimizer step."""
    close(key)
    span = _open[key] = Span(name, time.perf_counter())
    return span


def close(key: Hashable) -> None:
    """Report the open span of `key`, if its backward ended (else it is dropped)."""
    span = _open.pop(key, None)
    if span is not None and span.end is not None:
        report(key, span.name, span.end - span.start)


def _after_optimizer_step(*_) -> None:
    """Every optimizer step ends the open spans whose backward has run."""
    now = time.perf_counter()
    for key, span in list(_open.items()):
        if span.end is not None:
            span.end = now
            close(key)


register_optimizer_step_post_hook(_after_optimizer_step)


def forget() -> None:
    """Drop every remembered choice and trial (tests)."""
    _trials.clear()
    _open.clear()
