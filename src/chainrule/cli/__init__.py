"""`chainrule` command line: one module per command group, each a parser plus a call into the public
Python API (train, eval, sample, complete, score, generate, demo, datasets, data, bench, bn,
kl, compress, decompress, classifier, defend). `main` is the console entry point
(`chainrule = "chainrule.cli:main"`)."""

from __future__ import annotations

import json
import os
import sys
import traceback

from chainrule.allocator import allocations_kept
from chainrule.cli import (
    bench,
    bn,
    classifier,
    complete,
    compress,
    data,
    defend,
    demo,
    evaluation,
    generate,
    kl,
    sample,
    score,
    train,
)
from chainrule.cli.common import CommandParser, ExamplesFormatter, parse_int_list
from chainrule.denormals import denormals_flushed
from chainrule.errors import ChainruleError, debugging

__all__ = ["main", "build_parser", "ExamplesFormatter", "parse_int_list"]

EPILOG = """examples:
  chainrule demo                                   # 2-minute demo on the embedded 8x8 digits
  chainrule train recipes/nade-mnist.yaml train.max_epochs=5
  chainrule train recipes/nade-mnist.yaml --resume # continue a killed run
  chainrule train recipes/made-mnist.yaml --devices 2          # DDP, 2 processes (docs/distributed.md)
  chainrule data synth /tmp/big --n 2000000        # 1.6 GB memory-mapped dataset
  chainrule train recipes/made-mnist.yaml --data mmap:/tmp/big
  chainrule bench                                  # benchmark suite -> benchmarks/results/*.json
  chainrule eval zoo/nade-mnist --data binarized-mnist --split test
  chainrule sample zoo/nade-mnist -n 64 --seed 0 --out grid.png
  chainrule complete zoo/gated-pixelcnn-mnist --data binarized-mnist --mask bottom-half
  chainrule complete runs/gated-pixelcnn-mnist-superres/model --data binarized-mnist --superres
  chainrule score zoo/nade-mnist --data binarized-mnist --ood-data binarized-fashion-mnist -n 2000
  chainrule train recipes/csv.yaml data.name=csv:my-data.csv --out runs/my-data
  chainrule sample runs/my-data/model -n 100 --out samples.csv
  chainrule train recipes/transformer-shakespeare.yaml
  chainrule eval zoo/transformer-shakespeare --data shakespeare    # nats/char and bits/char
  chainrule generate zoo/transformer-shakespeare --prompt "ROMEO:" -n 500 --seed 0
  chainrule bn query tests/data/bif/asia.bif.gz --target lung --evidence smoke=yes,xray=yes
  chainrule bn fit alarm-10k.csv --structure tests/data/bif/alarm.bif.gz --out learned.bif
  chainrule kl tests/data/bif/alarm.bif.gz learned.bif    # exact, by variable elimination
  chainrule compress zoo/nade-mnist digits.npy digits.crac  # arithmetic coding, ~ -log2 p(x) bits
  chainrule classifier train --data fashion-mnist --out runs/cnn-fashion
  chainrule classifier eval runs/gated-pixelcnn-mnist-classes/model --data binarized-mnist  # Bayes rule
  chainrule defend runs/gated-pixelcnn-fashion/model --classifier runs/cnn-fashion --data fashion-mnist

exit codes:
  0    success (the result is one JSON line on stdout)
  2    a usage error or a chainrule error: bad input, recipe, data or model folder (one line on stderr)
  3    an internal error, i.e. a bug: one line naming the command and the exception; run again with
       --debug (or CHAINRULE_DEBUG=1) for the traceback, and please report it
  130  interrupted (Ctrl-C)
"""

#: Exit codes (documented in the epilog and docs/reference/cli.md).
EXIT_OK, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 2, 3, 130

#: The command modules, in the order `chainrule --help` lists them; each has `add_parser(sub)`.
COMMANDS = (
    train,
    evaluation,
    sample,
    complete,
    score,
    generate,
    kl,
    compress,
    demo,
    data,
    bench,
    bn,
    classifier,
    defend,
)


def build_parser() -> CommandParser:
    """The `chainrule` parser: one sub-command per command module (each sets `handler`)."""
    p = CommandParser(
        prog="chainrule",
        description="Likelihood-based generative models: train by maximum likelihood, evaluate"
        " exact log-likelihoods, sample and complete.",
        epilog=EPILOG,
        formatter_class=ExamplesFormatter,
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an internal error, and Lightning's info messages"
        " (also: environment variable CHAINRULE_DEBUG=1); goes before the command",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; print its result as one JSON line. This is the one error boundary: a
    ChainruleError prints its message on one line (exit 2, as argparse's usage errors), any other
    exception one line naming the command and the exception (exit 3; the traceback with `--debug`
    or CHAINRULE_DEBUG=1), Ctrl-C one line (exit 130)."""
    command = "chainrule"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.debug:
            os.environ["CHAINRULE_DEBUG"] = "1"  # also read by the trainer, and by DDP's child processes
        if not args.command:
            parser.print_help()
            return EXIT_OK
        command = f"chainrule {args.command}"
        # denormals flushed for the command's torch threads too, which inherit it; freed memory
        # kept for reuse (chainrule.allocator)
        with denormals_flushed(), allocations_kept():
            result = args.handler(args)
        if result is not None:
            print(json.dumps(result))
        return EXIT_OK
    except ChainruleError as e:
        print(f"chainrule: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the boundary: anything else is a bug, reported in one line
        return internal_error(command, e)


def internal_error(command: str, error: BaseException) -> int:
    """Report an unexpected exception: the traceback only when debugging, then one line."""
    if debugging():
        traceback.print_exc(file=sys.stderr)
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    first = first if len(first) <= 300 else first[:300] + "..."
    what = type(error).__name__ + (f": {first}" if first else "")
    hint = "" if debugging() else "; run again with --debug (or CHAINRULE_DEBUG=1) for the traceback"
    print(f"{command}: internal error: {what}{hint}; please report it", file=sys.stderr)
    return EXIT_INTERNAL
