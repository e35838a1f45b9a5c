"""`chainrule` command line: one module per command group, each a parser plus a call into the public
Python API (train, eval, sample, complete, score, generate, demo, datasets, data, bench, bn,
kl, classifier, defend). `main` is the console entry point (`chainrule = "chainrule.cli:main"`)."""

from __future__ import annotations

import json
import sys

from chainrule.cli import (
    bench,
    bn,
    classifier,
    complete,
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
from chainrule.errors import ChainruleError

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
  chainrule classifier train --data fashion-mnist --out runs/cnn-fashion
  chainrule classifier eval runs/gated-pixelcnn-mnist-classes/model --data binarized-mnist  # Bayes rule
  chainrule defend runs/gated-pixelcnn-fashion/model --classifier runs/cnn-fashion --data fashion-mnist
"""

#: The command modules, in the order `chainrule --help` lists them; each has `add_parser(sub)`.
COMMANDS = (
    train,
    evaluation,
    sample,
    complete,
    score,
    generate,
    kl,
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
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; print its result as one JSON line. Exit 2 on a ChainruleError (the message
    on stderr, no traceback), 130 on Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        result = args.handler(args)
    except ChainruleError as e:
        print(f"chainrule: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(json.dumps(result))
    return 0
