"""chainrule's C++ kernels, compiled on first use for this machine's vector instructions.

Where a loop of small PyTorch operations is the bottleneck (the PixelRNN scans' LSTM cell: a dozen
elementwise kernels a step, each a pass over strided views), or an elementwise function costs
more through PyTorch's kernels than it must (the Gated PixelCNN's gated tanh), one C++ pass does
the same arithmetic.
The source ships with the package and is built by `torch.utils.cpp_extension` into PyTorch's
extension cache (`TORCH_EXTENSIONS_DIR`, by default ~/.cache/torch_extensions) the first time it
is needed, which takes 15-25 s on 2 cores; later processes load the built library. Every kernel
has a pure-PyTorch twin that is its specification, and the callers fall back to it, with one
warning, when there is no C++ compiler or ninja, when the build fails, on other devices than the
CPU, or when the environment says `CHAINRULE_NATIVE=0`. ninja comes with chainrule (the `ninja`
package); the compiler is the one `torch.compile` uses on a CPU.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

SOURCES = tuple(
    Path(__file__).with_name(name) for name in ("lstm_cell.cpp", "chunked_scan.cpp", "gated_tanh.cpp")
)
#: headers the sources include: part of the build's identity, as the sources are
HEADERS = (Path(__file__).with_name("lstm_cell.h"),)

#: torch's vector-instruction level → the macros and flags that build ATen's vector types for it
_ISA_FLAGS = {
    "AVX512": ["-DCPU_CAPABILITY_AVX512", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mfma"],
    "AVX2": ["-DCPU_CAPABILITY_AVX2", "-mavx2", "-mfma", "-mf16c"],
}


def enabled() -> bool:
    """Whether the native kernels may be used at all (`CHAINRULE_NATIVE=0` turns them off)."""
    return os.environ.get("CHAINRULE_NATIVE", "1") != "0"


#: a build lock older than this was left by a killed build (one takes well under a minute), where
#: torch would wait for it forever
STALE_LOCK_SECONDS = 600


@functools.cache
def _build() -> bool:
    """Compile (or load the cached build of) the kernels; False, with one warning, if impossible."""
    try:
        isa = torch.backends.cpu.get_cpu_capability()
        flags = ["-O3", "-fopenmp", *_ISA_FLAGS.get(isa, [])]  # OpenMP: at::parallel_for
        key = (
            b"".join(p.read_bytes() for p in (*SOURCES, *HEADERS))
            + " ".join([*flags, torch.__version__]).encode()
        )
        tag = re.sub(r"\W", "_", isa).lower()  # "NO AVX" -> no_avx: the name is a C identifier
        name = f"chainrule_native_{tag}_{hashlib.sha1(key).hexdigest()[:12]}"
        from torch.utils import cpp_extension

        build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
        lock = build_dir / "lock"
        if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)
        if not (build_dir / f"{name}.so").exists():  # say why the first PixelRNN step takes a while
            print("chainrule: building its C++ kernels for this machine (once, 15-25 s) ...", file=sys.stderr)
        with _ninja_on_path():
            cpp_extension.load(
                name=name,
                sources=[str(p) for p in SOURCES],
                extra_cflags=flags,
                is_python_module=False,
                verbose=False,
            )
    except Exception as error:  # noqa: BLE001 - any build failure means: use the PyTorch twin
        warnings.warn(
            f"chainrule's C++ kernels could not be built ({type(error).__name__}: {error}); "
            "using the slower pure-PyTorch versions. A C++ compiler and ninja (`pip install ninja`) "
            "enable them; CHAINRULE_NATIVE=0 silences this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """PATH with the `ninja` Python package's binary on it while building, if no ninja is on PATH
    (a virtual environment that is not activated: torch looks for `ninja` on PATH)."""
    saved = os.environ.get("PATH", "")
    try:
        if shutil.which("ninja") is None:
            with contextlib.suppress(ImportError):
                import ninja

                os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + saved
        yield
    finally:
        os.environ["PATH"] = saved


def built() -> bool:
    """Whether the native kernels are enabled and built (building them if need be)."""
    return enabled() and _build()


def available(tensor: torch.Tensor) -> bool:
    """Whether the native kernels can run on `tensor` (CPU, enabled, built)."""
    return tensor.device.type == "cpu" and built()


def ops():
    """The registered kernels (`torch.ops.chainrule_native`), built if need be; callers ask
    `available` first, where the PyTorch twins must run instead."""
    if not built():
        raise RuntimeError("chainrule's C++ kernels are not available here (see the warning above)")
    return torch.ops.chainrule_native
