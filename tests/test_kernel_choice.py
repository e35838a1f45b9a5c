"""`kernel_choice.in_use`: calls alternate between candidates, each timed by the caller (`report`),
until the faster is known; it is then used, untimed, until the answer is old."""

from __future__ import annotations

import pytest
import torch

from chainrule import kernel_choice


@pytest.fixture(autouse=True)
def nothing_remembered():
    kernel_choice.forget()
    yield
    kernel_choice.forget()


class Clock:
    """A fake `perf_counter`; `run` is one call: it advances the clock by what the chosen candidate
    costs and reports that when asked to."""

    def __init__(self, monkeypatch, cost: dict[str, float]) -> None:
        self.now, self.cost, self.timed = 1000.0, cost, []
        monkeypatch.setattr(kernel_choice.time, "perf_counter", lambda: self.now)

    def run(self, key="k") -> str:
        name, timed = kernel_choice.in_use(key, tuple(self.cost))
        self.now += self.cost[name]
        if timed:
            kernel_choice.report(key, name, self.cost[name])
        self.timed.append(timed)
        return name


def test_calls_alternate_then_the_faster_is_used(monkeypatch) -> None:
    clock = Clock(monkeypatch, {"slow": 0.004, "fast": 0.003})
    trial = [clock.run() for _ in range(2 * (kernel_choice.TRIALS + 1))]
    assert trial[:4] == ["slow", "fast", "slow", "fast"]
    assert all(clock.timed)
    assert {clock.run() for _ in range(50)} == {"fast"}
    assert not any(clock.timed[-50:])  # the winner is not timed


def test_an_old_answer_is_tried_out_again(monkeypatch) -> None:
    clock = Clock(monkeypatch, {"a": 0.004, "b": 0.001})
    for _ in range(2 * (kernel_choice.TRIALS + 1) + 1):
        clock.run()
    assert clock.run() == "b"
    clock.cost.update(a=0.001, b=0.004)  # the machine's state moved
    clock.now += kernel_choice.RECHECK_SECONDS
    names = [clock.run() for _ in range(2 * (kernel_choice.TRIALS + 1) + 5)]
    assert names[-1] == "a" and "b" in names[:4]


def test_keys_are_separate(monkeypatch) -> None:
    clock = Clock(monkeypatch, {"a": 0.002, "b": 0.001})
    for _ in range(2 * (kernel_choice.TRIALS + 1) + 1):
        clock.run("x")
    assert clock.run("x") == "b"
    assert clock.run("y") == "a"  # a new key starts its own trial


def test_deterministic_algorithms_take_the_first_candidate(monkeypatch) -> None:
    clock = Clock(monkeypatch, {"first": 0.004, "b": 0.001})
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert {clock.run() for _ in range(40)} == {"first"}
    finally:
        torch.use_deterministic_algorithms(before)


def test_a_long_trial_waits_ten_times_its_length_before_the_next(monkeypatch) -> None:
    """Slow calls (1-2 s each): the next trial waits ten times as long as this one took, so that
    trials stay a small part of the work."""
    clock = Clock(monkeypatch, {"a": 2.0, "b": 1.0})
    for _ in range(2 * (kernel_choice.TRIALS + 1) + 1):
        clock.run()
    took = clock.now - 1000.0
    clock.timed.clear()
    while clock.now - 1000.0 < 9 * took:
        assert clock.run() == "b"
    assert not any(clock.timed)
    clock.now += 2 * took
    clock.run()
    assert clock.timed[-1]  # tried out again


def test_a_span_ends_at_the_optimizer_step_after_its_backward(monkeypatch) -> None:
    """A training call's span runs to the end of the next optimizer step once its backward has
    run; with no optimizer step, the next call with the key closes it at the backward's end."""
    seen = []
    monkeypatch.setattr(kernel_choice, "report", lambda key, name, seconds: seen.append((key, name, seconds)))
    span = kernel_choice.begin("k", "a")
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).step()
    assert seen == []  # its backward has not run: the step is not its
    span.end = span.start + 0.5
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).step()
    assert [s[:2] for s in seen] == [("k", "a")] and seen[0][2] >= 0
    other = kernel_choice.begin("k", "b")
    other.end = other.start + 0.25
    kernel_choice.begin("k", "a")  # the next call closes the previous span
    assert seen[-1] == ("k", "b", 0.25)
