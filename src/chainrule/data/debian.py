"""Data files shipped in a Debian package, found without needing root.

Sources, in order: the installed package's folder (e.g. /usr/share/datasets/fashion-mnist); the
chainrule cache (`$CHAINRULE_DATA/<cache folder>`); `apt-get download` of the .deb into a temporary
folder and `dpkg-deb -x` of it (neither needs root, but the apt package lists must exist: `apt-get
update` once), after which the files are copied into the cache. Every file is checked by sha256;
when no source works the error lists what each one said and how to get the files by hand.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chainrule.data.sources import cache_dir, sha256_bytes
from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_bytes


def apt_download(package: str, folder: Path) -> Path:
    """`apt-get download PACKAGE` into `folder`, then `dpkg-deb -x` it into `folder/root`; the
    extraction root. Raises ChainruleError saying which step failed."""
    try:
        subprocess.run(
            ["apt-get", "download", package], cwd=folder, check=True, capture_output=True, timeout=600
        )
    except FileNotFoundError:
        raise ChainruleError("apt-get is not available on this system") from None
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip().splitlines()
        raise ChainruleError(
            f"`apt-get download {package}` failed ({err[-1] if err else e}); if apt does not know the"
            " package, `apt-get update` (as root) refreshes its lists"
        ) from None
    except subprocess.TimeoutExpired:
        raise ChainruleError(f"`apt-get download {package}` timed out") from None
    debs = sorted(folder.glob("*.deb"))
    if not debs:
        raise ChainruleError(f"`apt-get download {package}` gave no .deb file")
    root = folder / "root"
    try:
        subprocess.run(
            ["dpkg-deb", "-x", str(debs[0]), str(root)], check=True, capture_output=True, timeout=600
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        raise ChainruleError(f"`dpkg-deb -x {debs[0].name}` failed ({e})") from None
    return root


@dataclass(frozen=True)
class DebianFiles:
    """Files of one folder of a Debian package, each pinned by sha256."""

    package: str  # e.g. "dataset-fashion-mnist"
    version: str  # the version whose files the checksums pin (for messages)
    folder: str  # absolute install folder, e.g. "/usr/share/datasets/fashion-mnist"
    cache_folder: str  # folder name inside cache_dir()
    files: tuple[tuple[str, str], ...]  # (file name, sha256)

    def how_to_get(self) -> str:
        """The instructions, for error messages, to place the files by hand."""
        names = ", ".join(n for n, _ in self.files)
        return (
            f"install the package (`sudo apt-get install {self.package}`, version {self.version}), or put"
            f" {names} from that package's {self.folder} (`apt-get download {self.package}` then"
            f" `dpkg-deb -x` the .deb) in {cache_dir() / self.cache_folder}"
            " (or set $CHAINRULE_DATA to a folder whose subfolder"
            f" {self.cache_folder} holds them)"
        )

    def _problem(self, folder: Path) -> str | None:
        """None when `folder` holds every file with its checksum, else what is wrong."""
        missing = [n for n, _ in self.files if not (folder / n).is_file()]
        if missing:
            return f"{folder} lacks {', '.join(missing)}"
        bad = [n for n, sha in self.files if sha256_bytes((folder / n).read_bytes()) != sha]
        if bad:
            return (
                f"{folder}: {', '.join(bad)} {'has' if len(bad) == 1 else 'have'} the wrong checksum"
                f" (corrupt, truncated or not version {self.version})"
            )
        return None

    def fetch(self) -> dict[str, Path]:
        """{file name: path} of checksum-verified files, from the first source that has them all."""
        problems = []
        cache = cache_dir() / self.cache_folder
        for folder in (Path(self.folder), cache):
            problem = self._problem(folder)
            if problem is None:
                return {n: folder / n for n, _ in self.files}
            if folder == cache or folder.exists():  # an absent install folder is no news
                problems.append(problem)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                extracted = apt_download(self.package, Path(tmp)) / self.folder.lstrip("/")
                problem = self._problem(extracted)
                if problem is not None:
                    raise ChainruleError(f"the downloaded {self.package}: {problem.split(': ', 1)[-1]}")
                for n, _ in self.files:
                    atomic_write_bytes(cache / n, (extracted / n).read_bytes())
            return {n: cache / n for n, _ in self.files}
        except ChainruleError as e:
            problems.append(str(e))
        raise ChainruleError(
            f"could not get the files of the Debian package {self.package}: {'; '.join(problems)}."
            f" To fix it, {self.how_to_get()}"
        )
