"""Helpers shared by benchmarks: timing, a matmul peak measured in the same run, peak memory,
machine info, JSON output."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def _load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


#: Load when this process started its benchmark work: the one that says whether *other* runs shared
#: the machine (at write time the benchmark's own threads are in the average too).
LOAD_AT_START = _load_average()


def synchronize(device: torch.device | str = "cpu") -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def best_time(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    min_seconds: float = 0.0,
    device: torch.device | str = "cpu",
) -> float:
    """Best-of-`repeats` wall time of `fn()` in seconds (best, not mean: the machines are shared)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return min(times)


def onednn_matmul_kernel(
    dtype: torch.dtype, n: int = 1024, rows: int = 8192
) -> tuple[Callable[[], object], float]:
    """A (rows x n) @ (n x n) matmul run by oneDNN on the CPU, as a 1x1 convolution of a
    channels-last map (rows / 64 maps of 8 x 8 pixels, n channels in and out), and its FLOPs.
    The default shape was oneDNN's fastest of those tried (n = 512, 1024, 2048; 2026-12-07)."""
    x = torch.randn(max(rows // 64, 1), n, 8, 8).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1).to(dtype)
    return (lambda: torch.nn.functional.conv2d(x, w)), 2 * x.shape[0] * 64 * n * n


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, device: str = "cpu") -> float:
    """Achieved GFLOP/s of a large matmul, the practical peak that ratios refer to: a square n^3
    torch.mm, and on a CPU also an 8192 x 1024 x 1024 product through oneDNN
    (`onednn_matmul_kernel`), whichever is faster. torch.mm's fp32 path is MKL, which on an AMD
    EPYC reached 126-195 GFLOP/s where oneDNN reached 186-226 (2 threads, 2026-12-07): a peak
    from torch.mm alone overstated every fp32 fraction by 12-30 % there."""
    if torch.device(device).type == "cuda":
        n = max(n, 8192)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = 2 * n**3 / best_time(lambda: a @ b, repeats=5, min_seconds=1.0, device=device) / 1e9
    if torch.device(device).type != "cpu":
        return best
    fn, flops = onednn_matmul_kernel(dtype)
    return max(best, flops / best_time(fn, repeats=5, min_seconds=1.0) / 1e9)


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def release_free_heap() -> None:
    """Give freed heap memory back to the OS (glibc `malloc_trim`), so that the next block's
    peak is not hidden by memory the allocator kept from earlier blocks."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextmanager
def peak_memory(device: torch.device | str = "cpu") -> Iterator[dict[str, float | None]]:
    """Peak memory of the block, in MB: the CUDA allocator's peak on a GPU; on a CPU the rise of
    the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs)
    after freed heap memory was handed back. None where the platform offers no measure."""
    out: dict[str, float | None] = {"peak_mb": None}
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield out
        out["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kb("VmRSS")
    except OSError:
        base = None
    yield out
    hwm = _status_kb("VmHWM")
    if base is not None and hwm is not None:
        out["peak_mb"] = (hwm - base) / 1024


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if LOAD_AT_START is not None:  # these machines are shared: say how busy
        info["load_average_1min_at_start"] = LOAD_AT_START
        info["load_average_1min"] = _load_average()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_result(name: str, payload: dict, folder: str | os.PathLike) -> Path:
    from chainrule.persistence import atomic_write_json

    path = Path(folder) / f"{name}.json"
    atomic_write_json(path, {"machine": machine_info(), **payload})
    return path
