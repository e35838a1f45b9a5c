"""What every command module shares: the parser class (intermixed options and positionals), the help
formatter that keeps example lines, and small argument checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule.errors import ChainruleError

SPLITS = ["train", "val", "test"]


class ExamplesFormatter(argparse.HelpFormatter):
    """Help text wrapped to the terminal like argparse's default, except text with line breaks of its
    own (the examples of an epilog), which keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose leaf commands parse options and positionals intermixed (argparse's
    own `parse_known_intermixed_args`), so `chainrule train R.yaml --out X train.lr=1e-3` gives
    both overrides to the recipe. Parsers with sub-commands parse the usual way (argparse cannot
    intermix those) and hand the rest to the chosen sub-command's parser."""

    _intermixing = False

    def error(self, message: str):  # noqa: D102 (argparse's own contract)
        """A usage error as one line (argparse prints its usage block first): the message and
        where the full usage is, exit code 2."""
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 (argparse's own contract)
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


#: seeds the CLI accepts: what torch.Generator.manual_seed takes without wrapping around
MAX_SEED = 2**63 - 1


def seed_value(text: str) -> int:
    """argparse type of --seed: an integer in 0..2**63-1 (a larger one overflowed deep inside
    torch as an internal error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be an integer in 0..2**63-1, got {text}")
    return value


def at_least(value: int | None, minimum: int, flag: str) -> None:
    """Refuse `flag`'s value below `minimum` (None = not given, accepted)."""
    if value is not None and value < minimum:
        raise ChainruleError(f"{flag} must be at least {minimum}, got {value}")


def latent_kwargs(model: Any, k: int | None, seed: int) -> dict[str, Any]:
    """log_prob options for `--k`/`--seed` (chainrule.evaluation.latent_options, seeded from
    `--seed`), with the error naming the flag when `--k` is given for an exact model."""
    import torch

    from chainrule.evaluation import latent_options

    if k is not None and model.exact_log_prob:
        raise ChainruleError(f"--k applies to latent-variable models (VAE), not {model.registry_name!r}")
    return latent_options(model, k, torch.Generator().manual_seed(seed))


def image_split(model: Any, data_name: str, split: str, n: int):
    """(dataset, the first `n` images of its split as floats), checked against the model's images."""
    import torch

    from chainrule.data import load_dataset

    data = load_dataset(data_name)
    if not data.image_shape:  # token streams declare none
        raise ChainruleError(f"dataset {data_name!r} holds no images")
    if tuple(data.image_shape) != tuple(model.image_shape or ()):
        raise ChainruleError(
            f"dataset {data_name!r} has images of shape {tuple(data.image_shape)}; the model was trained"
            f" on {tuple(model.image_shape or ())}"
        )
    at_least(n, 1, "-n")
    return data, data.split(split)[:n].to(torch.get_default_dtype())


def parse_int_list(text: str, what: str) -> list[int]:
    """Comma-separated positive integers (`what` names the option in the error)."""
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise ChainruleError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ChainruleError(f"{what} must be positive integers, got {text!r}")
    return values


def load_model_or_bif(path: str):
    """A saved model folder, or a Bayesian network from a BIF file."""
    from chainrule.graphical import read_bif
    from chainrule.persistence import load

    if Path(path).is_file() and (path.endswith(".bif") or path.endswith(".bif.gz")):
        return read_bif(path)
    return load(path, kind="model")
