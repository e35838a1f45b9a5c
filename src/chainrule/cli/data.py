"""`chainrule datasets` (the named datasets) and `chainrule data synth|export|info` (memory-mapped
array datasets)."""

from __future__ import annotations

import time
from pathlib import Path

from chainrule.cli.common import CommandParser, seed_value
from chainrule.errors import ChainruleError


def add_parser(sub) -> CommandParser:
    sub.add_parser("datasets", help="list the named datasets (or use csv:PATH for your own file)")

    da = sub.add_parser(
        "data",
        help="on-disk (memory-mapped) array datasets: synth, export, info",
        description="Array datasets: uint8 .npy shards + meta.json, read lazily; train on one with"
        " --data mmap:PATH.",
    )
    dsub = da.add_subparsers(dest="data_command", metavar="ACTION")
    dsy = dsub.add_parser("synth", help="write N synthetic 28x28 digit images (dynamic binarization)")
    dsy.add_argument("path", help="new folder")
    dsy.add_argument("--n", type=int, default=2_000_000, help="training images (default 2,000,000 = 1.57 GB)")
    dsy.add_argument("--val", type=int, default=10_000, help="validation images (default 10,000)")
    dsy.add_argument("--test", type=int, default=10_000, help="test images (default 10,000)")
    dsy.add_argument("--seed", type=seed_value, default=0)
    dsy.add_argument(
        "--shard-rows", type=int, default=1 << 20, help="rows per .npy shard (default 1,048,576)"
    )
    dex = dsub.add_parser("export", help="write a named dataset in the array format")
    dex.add_argument("name", help="dataset name (chainrule datasets lists them)")
    dex.add_argument("path", help="new folder")
    dex.add_argument("--shard-rows", type=int, default=1 << 20)
    din = dsub.add_parser("info", help="describe an array dataset folder")
    din.add_argument("path")
    sub.choices["datasets"].set_defaults(handler=cmd_datasets)
    da.set_defaults(handler=cmd_data)
    return da


def cmd_datasets(args) -> dict:
    from chainrule.data import DATASETS

    return {
        "datasets": list(DATASETS),
        "your_own": "csv:PATH (a CSV file of integer codes 0..K-1)",
        "also": "mmap:PATH for an array folder (chainrule data)",
        "files": ["text:PATH (UTF-8 text)", "wav:PATH (PCM WAV, mu-law)"],
    }


def cmd_data(args) -> dict:
    from chainrule.data.arrays import read_meta

    if not args.data_command:
        raise ChainruleError(
            "`chainrule data` needs an action: synth, export or info (see chainrule data -h)"
        )
    t = time.time()
    if args.data_command == "synth":
        from chainrule.data.synthetic import write_synthetic_digits

        for k in ("n", "val", "test", "shard_rows"):
            if getattr(args, k) < 1:
                raise ChainruleError(f"--{k.replace('_', '-')} must be at least 1, got {getattr(args, k)}")
        write_synthetic_digits(args.path, args.n, args.val, args.test, args.seed, args.shard_rows)
    elif args.data_command == "export":
        from chainrule.data import load_dataset
        from chainrule.data.arrays import export_dataset

        export_dataset(load_dataset(args.name), args.path, shard_rows=args.shard_rows)
    meta = read_meta(args.path)
    files = [Path(args.path) / f for fs in meta.splits.values() for f in fs]
    from chainrule.data.arrays import open_array_dataset

    ds = open_array_dataset(args.path)
    return {
        "path": args.path,
        "name": meta.name,
        "rows": {s: len(getattr(ds, s)) for s in ("train", "val", "test")},
        "dim": ds.dim,
        "num_values": meta.num_values,
        "dynamic_binarization": meta.dynamic_binarization,
        "bytes": sum(f.stat().st_size for f in files),
        "shards": {s: len(fs) for s, fs in meta.splits.items()},
        "seconds": round(time.time() - t, 1),
        "use_with": f"--data mmap:{args.path}",
    }
