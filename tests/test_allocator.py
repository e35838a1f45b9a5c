"""`allocations_kept` (chainrule.allocator): inside, a training step reuses the memory the step
before freed instead of faulting fresh pages in (with glibc's defaults every step of an image model
did, a quarter of a Diagonal BiLSTM step); leaving the outermost block puts glibc's defaults back.
That fit and the CLI run inside it: tests/test_work_settings.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chainrule import allocator
from chainrule.allocator import allocations_kept, glibc, keeping

#: five "steps" that each allocate and free activations of 8-48 MB, in glibc's default mode and
#: inside the block, in a fresh interpreter (a long test process's heap holds whatever earlier
#: tests left); the page faults of each step
PROBE = """
import json, resource, torch
from chainrule.allocator import allocations_kept

def step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    activations = [torch.empty(mb << 18).fill_(1.0) for mb in (48, 8, 24, 40)]  # float32: MB
    del activations
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

seen = {"default": [step() for _ in range(5)]}
with allocations_kept():
    seen["kept"] = [step() for _ in range(5)]
print(json.dumps(seen))
"""


@pytest.mark.skipif(glibc() is None, reason="the allocator's settings are glibc's")
def test_steps_inside_the_block_reuse_freed_memory() -> None:
    """Once the first steps have grown the heap, steps inside the block fault few pages in
    (glibc still moves a buffer between free chunks now and then: 0-12 % of the default's in
    trials), where every step in the default mode faults most of its 120 MB in afresh."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    default, kept = sum(seen["default"][2:]), sum(seen["kept"][2:])
    assert default > 3 * (100 << 20) // 4096 // 2, seen  # over half the pages of three steps
    assert kept < 0.4 * default, seen


class RecordingLibc:
    """Stands in for glibc: records mallopt and malloc_trim calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_only_the_outermost_block_switches_and_restores(monkeypatch) -> None:
    libc = RecordingLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: libc)
    keep = [
        ("mallopt", allocator.M_MMAP_MAX, 0),
        ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.KEEP_UP_TO),
    ]
    restore = [
        ("mallopt", allocator.M_MMAP_MAX, allocator.DEFAULT_MMAP_MAX),
        ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.DEFAULT_TRIM_THRESHOLD),
        ("malloc_trim", 0),
    ]
    assert not keeping()
    with allocations_kept():
        assert libc.calls == keep and keeping()
        with allocations_kept():
            assert keeping()
        assert libc.calls == keep and keeping()
    assert libc.calls == keep + restore and not keeping()


def test_an_error_inside_still_restores(monkeypatch) -> None:
    libc = RecordingLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: libc)
    with pytest.raises(RuntimeError), allocations_kept():
        raise RuntimeError("a failed step")
    assert libc.calls[-1] == ("malloc_trim", 0) and not keeping()
