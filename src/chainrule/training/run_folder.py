"""A run folder has one writer, and an existing run is never overwritten by accident.

`claim_run_folder(out, resume=, force=)` is what every command that writes a run folder (`train`,
`demo`, `fit` itself) enters first, before any data is loaded:

- `out` must be a folder or not exist (an existing file is refused). Missing parent folders are
  created only inside the current directory (`runs/group/name`); elsewhere the parent must exist,
  so a typo such as `/hom/me/runs/x` is an error instead of a new tree of folders.
- A lock file, `out/run.lock`, is created atomically (`O_CREAT | O_EXCL`) holding the pid, the
  host, the process's start time and the wall-clock start. A second writer is refused with a
  message naming that pid and host. A lock whose process is gone (same host, pid not alive or
  alive with another start time: a reused pid) is stale: it is taken over with a one-line warning.
  The lock is removed when the block ends, on error too.
- A non-empty folder is refused unless `resume` (continue the run in it) or `force` (replace it:
  the entries a run writes are deleted; a folder that holds no run is never emptied).

In a distributed run only the process of global rank 0 claims the folder (the others are started
after it, with the folder already in use); `launch_rank` reads the rank from the launcher's
environment (torchrun's RANK, SLURM_PROCID, or Lightning's NODE_RANK and LOCAL_RANK).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from chainrule.errors import ChainruleError

LOCK = "run.lock"
#: What a run writes into its folder (`force` deletes these, and only these).
RUN_ENTRIES = (
    "checkpoints",
    "logs",
    "model",
    "run.json",
    "train_time.json",
    "curves.png",
    "metrics.json",
    "samples.png",
    "data.png",
)
#: A lock file without readable content older than this is a leftover of a killed start.
UNREADABLE_LOCK_SECONDS = 60.0
_HELD: set[Path] = set()  # folders this process holds (claims nest: demo -> fit)


def launch_rank(devices: int = 1) -> int:
    """This process's global rank as its launcher set it (0 when not launched as one of many)."""
    env = os.environ

    def number(name: str) -> int:
        try:
            return int(env.get(name, "0"))
        except ValueError:
            return 0

    if "RANK" in env:
        return number("RANK")
    if number("SLURM_NTASKS") > 1 and "SLURM_PROCID" in env:
        return number("SLURM_PROCID")
    return number("NODE_RANK") * max(devices, 1) + number("LOCAL_RANK")


@contextlib.contextmanager
def claim_run_folder(
    out: str | os.PathLike, *, resume: bool = False, force: bool = False, devices: int = 1
) -> Iterator[Path]:
    """Hold `out` as this run's folder for the block (see the module docstring)."""
    out = Path(out)
    if resume and force:
        raise ChainruleError("--resume continues a run and --force replaces it: give one of them")
    key = out.resolve()
    if key in _HELD or launch_rank(devices) != 0:
        yield out
        return
    make_output_folder(out)
    lock = acquire_lock(out)
    _HELD.add(key)
    try:
        check_contents(out, resume, force)
        yield out
    finally:
        _HELD.discard(key)
        release_lock(lock)


def make_output_folder(out: Path) -> None:
    """Create `out` (and missing parents inside the current directory only); one-line errors for
    a file in the way, a missing parent elsewhere, or a folder that cannot be written."""
    if out.exists() and not out.is_dir():
        raise ChainruleError(f"output folder {out} is an existing file; choose a folder path")
    if out.is_dir():
        return
    parent = out.absolute().parent
    inside_cwd = parent.is_relative_to(Path.cwd()) and not out.is_absolute() and ".." not in out.parts
    file_above = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
    if file_above is not None:
        raise ChainruleError(f"cannot create output folder {out}: {file_above} is a file, not a folder")
    if not parent.is_dir() and not inside_cwd:
        raise ChainruleError(
            f"cannot create output folder {out}: its parent {parent} does not exist (create it first;"
            " missing parents are created only inside the current directory)"
        )
    try:
        out.mkdir(parents=inside_cwd)
    except FileExistsError:
        if not out.is_dir():
            raise ChainruleError(f"output folder {out} is an existing file; choose a folder path") from None
    except OSError as e:
        raise ChainruleError(f"cannot create output folder {out}: {e.strerror or e}") from None


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    """Whether process `pid` on this host still runs (and is the same process, where the start
    time was recorded: pids are reused, in containers especially)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    except (OverflowError, OSError):
        return False
    now = _process_start(pid)
    return start is None or now is None or now == start


def _lock_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "process_start": _process_start(os.getpid()),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _create(lock: Path) -> bool:
    """Create the lock file with this process's record; False if it already exists."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as e:
        raise ChainruleError(f"cannot write in output folder {lock.parent}: {e.strerror or e}") from None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(_lock_record()) + "\n")
    return True


def _read(lock: Path) -> dict | None:
    """The lock's record, or None when it cannot be read (a start killed mid-write, or garbage)."""
    try:
        record = json.loads(lock.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    ok = (
        isinstance(record, dict)
        and isinstance(record.get("pid"), int)
        and isinstance(record.get("host"), str)
    )
    return record if ok else None


def _stale(lock: Path, record: dict | None) -> bool:
    if record is None:
        try:
            return time.time() - lock.stat().st_mtime > UNREADABLE_LOCK_SECONDS
        except OSError:
            return True
    if record["host"] != socket.gethostname():
        return False  # another machine's process: cannot be checked from here
    start = record.get("process_start")
    return not _alive(record["pid"], start if isinstance(start, str) else None)


def acquire_lock(out: Path) -> Path:
    """Create `out/run.lock`, taking over a stale one; refuse while another writer holds it."""
    lock = out / LOCK
    for _ in range(3):
        if _create(lock):
            return lock
        record = _read(lock)
        if not _stale(lock, record):
            raise ChainruleError(_in_use_message(out, lock, record))
        # take over by renaming the stale file aside (atomic: one of several racing takers wins),
        # then check that what was renamed is the stale lock that was read, not a new one
        aside = lock.with_name(f".{LOCK}.stale.{os.getpid()}")
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            continue
        if _read(aside) != record:
            with contextlib.suppress(OSError):
                os.link(aside, lock)  # put a live lock back (fails if a new one exists already)
            aside.unlink(missing_ok=True)
            continue
        aside.unlink(missing_ok=True)
        who = f"pid {record['pid']} on {record['host']}" if record else "an unreadable lock"
        warnings.warn(f"{out}: taking over a stale lock ({who} is no longer running)", stacklevel=4)
    raise ChainruleError(_in_use_message(out, lock, _read(lock)))


def _in_use_message(out: Path, lock: Path, record: dict | None) -> str:
    if record is None:
        return (
            f"output folder {out} is locked by {lock} (being created, or unreadable); if no run is"
            " writing there, delete that file"
        )
    return (
        f"output folder {out} is in use by another run (pid {record['pid']} on {record['host']},"
        f" started {record.get('started', '?')}); wait for it to end or choose another output folder"
        f" (if that process is gone, delete {lock})"
    )


def release_lock(lock: Path) -> None:
    """Remove the lock if it is still this process's."""
    record = _read(lock)
    if record is not None and record["pid"] == os.getpid() and record["host"] == socket.gethostname():
        lock.unlink(missing_ok=True)


def check_contents(out: Path, resume: bool, force: bool) -> None:
    """Refuse a folder that already holds something, unless resuming (the caller checks the
    checkpoint) or forcing (a run's entries are deleted; anything else is refused)."""
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK and not p.name.startswith(f".{LOCK}"))
    if resume or not entries:
        return
    what = "a run" if set(entries) & set(RUN_ENTRIES) else "files"
    if not force:
        raise ChainruleError(
            f"output folder {out} already holds {what} ({', '.join(entries[:4])}"
            f"{', ...' if len(entries) > 4 else ''}); pass --resume to continue it (train), --force to"
            " replace it, or choose another output folder"
        )
    foreign = [e for e in entries if e not in RUN_ENTRIES]
    if foreign:
        raise ChainruleError(
            f"--force replaces a run, but output folder {out} also holds {foreign[:4]}, which no run"
            " writes; choose another output folder or move those away"
        )
    for name in entries:
        path = out / name
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise ChainruleError(f"--force: cannot remove {path}: {e.strerror or e}") from None
