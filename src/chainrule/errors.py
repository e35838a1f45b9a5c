"""One exception type for every user-facing mistake, so the CLI can print one clean line; and the
debug switch that asks for tracebacks and third-party info messages instead."""

import os


class ChainruleError(ValueError):
    """Bad input, data, recipe or model file; the message names the problem and the fix."""


def first_line(error: BaseException, empty: str = "") -> str:
    """The first line of an exception's message (torch's run to many lines) for a one-line
    error, or `empty` when it has none (a bare MemoryError)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else empty


def debugging() -> bool:
    """Whether CHAINRULE_DEBUG (set by the CLI's `--debug` too) asks for tracebacks of internal
    errors and for Lightning's info messages."""
    return os.environ.get("CHAINRULE_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
