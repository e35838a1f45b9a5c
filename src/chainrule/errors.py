"""One exception type for every user-facing mistake, so the CLI can print one clean line."""


class ChainruleError(ValueError):
    """Bad input, data, recipe or model file; the message names the problem and the fix."""
