"""`kernel_choice.fastest`: times candidates, remembers the winner, measures again when it is old."""

from __future__ import annotations

import time

import pytest
import torch

from chainrule import kernel_choice


@pytest.fixture(autouse=True)
def nothing_remembered():
    kernel_choice.forget()
    yield
    kernel_choice.forget()


def sleeper(seconds: float, calls: list[str], name: str):
    def run() -> None:
        calls.append(name)
        time.sleep(seconds)

    return run


def test_the_faster_candidate_wins_and_is_remembered() -> None:
    calls: list[str] = []
    candidates = {"slow": sleeper(0.004, calls, "slow"), "fast": sleeper(0.0, calls, "fast")}
    assert kernel_choice.fastest("k", candidates) == "fast"
    timed = len(calls)
    assert timed == 2 * (kernel_choice.REPEATS + 1)  # one untimed run each, then the repeats
    assert kernel_choice.fastest("k", candidates) == "fast"
    assert len(calls) == timed  # remembered: nothing run again


def test_an_old_answer_is_measured_again(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(kernel_choice.time, "monotonic", lambda: clock[0])
    speeds = {"a": 0.004, "b": 0.0}
    candidates = {name: (lambda n=name: time.sleep(speeds[n])) for name in speeds}
    assert kernel_choice.fastest("k", candidates) == "b"
    speeds.update(a=0.0, b=0.004)  # the machine's state moved
    clock[0] += kernel_choice.RECHECK_SECONDS / 2
    assert kernel_choice.fastest("k", candidates) == "b"  # still remembered
    clock[0] += kernel_choice.RECHECK_SECONDS
    assert kernel_choice.fastest("k", candidates) == "a"


def test_keys_are_separate() -> None:
    assert kernel_choice.fastest("x", {"a": lambda: time.sleep(0.003), "b": lambda: None}) == "b"
    assert kernel_choice.fastest("y", {"a": lambda: None, "b": lambda: time.sleep(0.003)}) == "a"


def test_deterministic_algorithms_take_the_first_candidate_untimed() -> None:
    calls: list[str] = []
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        name = kernel_choice.fastest(
            "k", {"first": sleeper(0.003, calls, "first"), "b": sleeper(0, calls, "b")}
        )
    finally:
        torch.use_deterministic_algorithms(before)
    assert name == "first" and calls == []
