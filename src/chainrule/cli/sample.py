"""`chainrule sample MODEL_DIR`: draw samples into a PNG grid, a CSV file or a .npy array.

Samples are drawn and written in batches of SAMPLE_CHUNK, so memory does not grow with -n (CSV
and .npy only: a PNG grid is refused above MAX_GRID samples). The output is checked first
(cli/outputs.py: never inside a model folder, an existing file only with --force) and written
through a temporary file renamed into place at the end.
"""

from __future__ import annotations

import inspect
import math
import shutil
import time
from pathlib import Path

from chainrule.cli.common import CommandParser, at_least, seed_value
from chainrule.errors import ChainruleError

SAMPLE_CHUNK = 10_000  # samples drawn and written at a time
MAX_GRID = 1024  # the most samples a PNG grid shows


def add_parser(sub) -> CommandParser:
    s = sub.add_parser(
        "sample",
        help="draw samples from a saved model into a PNG grid, a CSV file or a .npy array",
        description="Draw samples. OUT ending in .csv gets one row per sample (integer codes, or"
        " real values for continuous models; with the training file's header when there is one);"
        " .npy gets an array (N, D) (uint8 codes for up to 256 values, int64 above, float32 for"
        f" continuous models); anything else gets a PNG grid of images (at most {MAX_GRID})."
        f" Any -n streams in batches of {SAMPLE_CHUNK:,}, so memory stays flat.",
    )
    s.add_argument("model_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=seed_value, default=0)
    s.add_argument("--out", default="samples.png", help="PNG, .csv or .npy path (default samples.png)")
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s.add_argument(
        "--method", default="fast", choices=["fast", "generic"], help="sampler of autoregressive models"
    )
    s.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="class-conditional models: this many samples of every class, one row per class"
        " (default 8; -n is then ignored)",
    )
    s.set_defaults(handler=cmd_sample)
    return s


def _sample_kwargs(model, args) -> tuple[dict, int | None]:
    """`sample` options: the sampler (models whose `sample` takes `method`) and, for a
    class-conditional model, --per-class rows (their labels are made per chunk); also the grid's
    columns."""
    from chainrule.validation import check_num_samples

    kwargs: dict = {}
    if "method" in inspect.signature(model.sample).parameters:
        kwargs["method"] = args.method
    if model.class_conditional:
        per_class = 8 if args.per_class is None else args.per_class
        at_least(per_class, 1, "--per-class")
        args.n = check_num_samples(model.num_classes * per_class)
        return kwargs, per_class
    if args.per_class is not None:
        raise ChainruleError(f"--per-class needs a class-conditional model; {args.model_dir} is not one")
    return kwargs, None


def _chunks(model, args, kwargs: dict, per_class: int | None):
    """The samples in batches of SAMPLE_CHUNK (one generator throughout: -n at most one batch
    draws exactly what one call would); with `per_class`, sample i has class i // per_class."""
    import torch

    g = torch.Generator().manual_seed(args.seed)
    for a in range(0, args.n, SAMPLE_CHUNK):
        b = min(args.n, a + SAMPLE_CHUNK)
        extra = {} if per_class is None else {"cond": torch.arange(a, b) // per_class}
        yield model.sample(b - a, generator=g, **kwargs, **extra)


def _npy_dtype(model, x):
    import numpy as np
    import torch

    if model.value_type == "continuous":
        return np.float64 if x.dtype == torch.float64 else np.float32
    return np.uint8 if model.num_values is not None and model.num_values <= 256 else np.int64


def _write_stream(path, chunks, model, args, kind: str) -> None:
    """Write every chunk to `path` as it is drawn (.csv rows, or .npy data after its header)."""
    import numpy as np

    from chainrule.cli.outputs import replacing
    from chainrule.data.csv_file import csv_header, csv_rows
    from chainrule.persistence import read_config

    real = model.value_type == "continuous"
    with replacing(path) as f:
        for i, x in enumerate(chunks):
            x = x.detach().cpu().reshape(x.shape[0], -1)
            if kind == "csv":
                if i == 0:
                    columns = read_config(args.model_dir).get("training", {}).get("columns")
                    f.write(csv_header(x.shape[1], columns))
                f.write(csv_rows(x, real))
                continue
            dtype = _npy_dtype(model, x)
            if i == 0:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
                np.lib.format.write_array_header_1_0(f, {**header, "shape": (args.n, x.shape[1])})
            arr = x.numpy() if real else x.round().long().numpy()
            f.write(np.ascontiguousarray(arr, dtype=dtype).tobytes())


def cmd_sample(args) -> dict:
    from chainrule.cli.outputs import check_output
    from chainrule.models.base import models_sequences
    from chainrule.persistence import load
    from chainrule.report import image_grid

    model = load(args.model_dir)
    at_least(args.n, 1, "-n")
    if models_sequences(model):
        raise ChainruleError(f"{args.model_dir} is a sequence model: use `chainrule generate`")
    suffix = args.out.lower().rsplit(".", 1)[-1] if "." in args.out else ""
    kind = suffix if suffix in ("csv", "npy") else "png"
    if model.image_shape is None and kind == "png":
        raise ChainruleError(
            "this model has no image_shape, so it cannot draw a grid; use --out FILE.csv or FILE.npy"
        )
    kwargs, ncols = _sample_kwargs(model, args)
    if kind == "png" and args.n > MAX_GRID:
        raise ChainruleError(
            f"a PNG grid shows at most {MAX_GRID} samples, asked for {args.n:,};"
            " write them to --out FILE.npy or FILE.csv instead"
        )
    path = check_output(args.out, args.force, args.model_dir)
    if kind != "png":
        check_disk_space(path, args.n * math.prod(model.event_shape), kind, model.value_type)
    t = time.time()
    chunks = _chunks(model, args, kwargs, ncols)
    if kind != "png":
        _write_stream(path, chunks, model, args, kind)
        return {"out": args.out, "n": args.n, "seconds": round(time.time() - t, 3)}
    x = next(chunks)
    secs = time.time() - t
    image_grid(
        x,
        model.image_shape,
        args.out,
        num_values=model.num_values,
        ncols=ncols,
        title=f"{model.registry_name}: {args.n} samples, seed {args.seed}"
        + (", one row per class" if ncols else ""),
    )
    return {"out": args.out, "n": args.n, "seconds": round(secs, 3)}


#: bytes per value written: CSV holds a digit and a comma for codes, about 12 characters for
#: reals; .npy holds uint8 codes or float32 reals
BYTES_PER_VALUE = {("csv", False): 2, ("csv", True): 12, ("npy", False): 1, ("npy", True): 4}


def check_disk_space(path: Path, values: int, kind: str, value_type: str) -> None:
    """Refuse, before drawing anything, an output that cannot fit on the disk it goes to (memory
    stays bounded by chunking; the disk is what a huge -n fills)."""
    need = values * BYTES_PER_VALUE[(kind, value_type == "continuous")]
    free = shutil.disk_usage(path.parent if str(path.parent) else ".").free
    if need > free:
        raise ChainruleError(
            f"{path} would take about {need / 1e9:,.1f} GB but its disk has {free / 1e9:,.1f} GB free;"
            " ask for fewer samples (-n)"
        )
