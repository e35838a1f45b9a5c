"""`chainrule bench`: the benchmark suite (`chainrule.benchmark.suite`), JSON files per part."""

from __future__ import annotations

from chainrule.cli.common import CommandParser
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    be = sub.add_parser(
        "bench",
        help="run the benchmark suite; write benchmarks/results/*.json",
        description="Training throughput, achieved FLOP/s vs a matmul peak measured in the same run,"
        " peak memory, fast-vs-generic sampling, all-reduce cost and a 1-64 GPU scaling estimate."
        " The default settings finish in a few minutes on 2 CPU cores.",
    )
    be.add_argument("--full", action="store_true", help="larger batches and models (slower)")
    be.add_argument("--compile", action="store_true", help="also time torch.compile'd training steps")
    be.add_argument(
        "--only", default="", help="comma-separated parts: training,sampling,allreduce,scaling,mmap"
    )
    be.add_argument("--out", default="benchmarks/results", help="folder for the JSON files")
    be.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: comparable on shared machines; the training part also times"
        " one thread per core)",
    )
    be.set_defaults(handler=cmd_bench)
    return be


def cmd_bench(args) -> dict:
    from chainrule.benchmark.suite import run_suite

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if args.only and not parts:
        raise ChainruleError(f"--only takes comma-separated part names, got {args.only!r}")
    return run_suite(args.out, full=args.full, compile=args.compile, only=parts, threads=args.threads)
