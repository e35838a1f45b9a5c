"""`chainrule compress MODEL_DIR IN OUT` and `chainrule decompress MODEL_DIR IN OUT`: lossless
compression with a model's conditionals driving an arithmetic coder (chainrule.coding).

Image models (FVSBN, NADE, MADE, PixelCNN, ...) compress .npy or .csv files of images (one image
a row, or an array (N, H, W)) of the model's levels; sequence models with a character vocabulary
(char-RNN, Transformer) compress a UTF-8 text file. The output of `decompress` is written in the
format its name says (.npy or .csv for images; text as it was).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from chainrule.cli.common import CommandParser
from chainrule.errors import ChainruleError

EPILOG = """examples:
  chainrule compress zoo/nade-mnist digits.npy digits.crac
  chainrule decompress zoo/nade-mnist digits.crac digits-again.npy
  chainrule compress zoo/lstm-shakespeare sonnets.txt sonnets.crac
  chainrule decompress zoo/lstm-shakespeare sonnets.crac sonnets-again.txt

The compressed file records the model's weights_sha256: decompressing with any other model is an
error. Decode on the same kind of machine (CPU/GPU, library versions) that encoded: the decoder must
compute bit-identical probabilities, and a CRC-32 of the data says whether it did."""


def add_parser(sub) -> CommandParser:
    for name, verb, handler in (
        ("compress", "compress IN into OUT", cmd_compress),
        ("decompress", "decompress IN (made by `chainrule compress`) into OUT", cmd_decompress),
    ):
        p = sub.add_parser(
            name,
            help=f"{verb} with a model's conditionals driving an arithmetic coder (lossless)",
            description=f"{verb.capitalize()}: an arithmetic coder driven by the conditionals of an"
            " autoregressive model, so the code takes about -log2 p(x) bits (the model's negative"
            " log-likelihood in bits; every bit of KL from the data's distribution to the model's costs a"
            " bit). Images: .npy or .csv files of the model's levels (binary images for binary"
            " models), one image a row or an array (N, H, W); text models: a UTF-8 text file.",
            epilog=EPILOG,
        )
        p.add_argument("model_dir", help="the model folder (zoo/..., runs/.../model)")
        p.add_argument("input", metavar="IN", help="file to read")
        p.add_argument("output", metavar="OUT", help="file to write (.npy or .csv for decompressed images)")
        p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "compress":
            p.add_argument("--chunk", type=int, default=256, help="images coded together (default 256)")
        p.set_defaults(handler=handler)
    return p


def read_images(path: Path):
    """Images from .npy (N, ...) or .csv (one image a row, optional header) as int64 (N, D), and
    the array shape to restore."""
    import numpy as np

    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ChainruleError(f"{path} is not a readable .npy array ({e})") from None
    elif path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r]
        if rows and not all(c.strip().lstrip("-").isdigit() for c in rows[0]):
            rows = rows[1:]  # a header line
        try:
            array = np.array([[int(c) for c in r] for r in rows], dtype=np.int64)
        except ValueError:
            raise ChainruleError(f"{path}: every cell must be an integer level, one image a row") from None
    else:
        raise ChainruleError(f"images are read from .npy or .csv files, got {path.name}")
    if array.ndim < 2 or array.shape[0] == 0 or array.dtype.kind not in "biuf":
        raise ChainruleError(
            f"{path}: expected numbers shaped (N images, ...), got {array.dtype} {array.shape}"
        )
    flat = array.reshape(len(array), -1)
    if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        raise ChainruleError(f"{path}: values must be integer levels")
    return flat.astype(np.int64), list(array.shape)


def write_images(path: Path, images, shape: list[int]) -> None:
    """Decoded images (N, D) as .csv rows (with an x0, x1, ... header) or a .npy array of `shape`."""
    import io

    import numpy as np

    from chainrule.cli.outputs import replacing

    array = images.numpy().reshape(shape)
    array = array.astype(np.uint8) if array.max(initial=0) < 256 else array
    with replacing(path) as f:
        if path.suffix.lower() == ".csv":
            flat = array.reshape(len(array), -1)
            f.write((",".join(f"x{i}" for i in range(flat.shape[1])) + "\n").encode())
            f.write("".join(",".join(map(str, r)) + "\n" for r in flat.tolist()).encode())
        else:
            buffer = io.BytesIO()
            np.save(buffer, array)
            f.write(buffer.getvalue())


def _setup(args, for_images_out: bool):
    """IN checked, OUT checked (never overwritten without --force), the model and what it codes."""
    from chainrule.cli.outputs import check_output
    from chainrule.coding.model_coder import check_codable
    from chainrule.persistence import load

    path = Path(args.input).expanduser()
    if not path.is_file():
        raise ChainruleError(f"IN {args.input} not found")
    out = check_output(args.output, args.force, args.model_dir)
    model = load(args.model_dir)
    kind = check_codable(model)
    if for_images_out and kind == "images" and out.suffix.lower() not in (".npy", ".csv"):
        raise ChainruleError(f"decompressed images are written to .npy or .csv files, got {out.name}")
    return path, out, model, kind


def cmd_compress(args) -> dict:
    import math

    import torch

    from chainrule.cli.outputs import replacing
    from chainrule.coding import compress

    path, out, model, kind = _setup(args, False)
    start = time.perf_counter()
    if kind == "text":
        try:
            with path.open(encoding="utf-8", newline="") as f:  # newline="": keep \r\n as it is
                data = f.read()
        except UnicodeDecodeError:
            raise ChainruleError(f"{path} is not UTF-8 text") from None
        extra: dict = {}
        units = len(data)
    else:
        flat, shape = read_images(path)
        data = torch.from_numpy(flat)
        extra, units = {"array_shape": shape}, len(flat)
    blob = compress(model, data, chunk=args.chunk, progress=False if args.quiet else None, extra=extra)
    with torch.no_grad():
        x = model.encode(data)[None] if kind == "text" else data
        ideal = float(-model.log_prob(x).double().sum()) / math.log(2)
    with replacing(out) as f:
        f.write(blob)
    unit = "char" if kind == "text" else "image"
    return {
        "in": str(path),
        "out": str(out),
        "model": args.model_dir,
        "bytes_in": path.stat().st_size,
        "bytes_out": len(blob),
        f"bits_per_{unit}": round(8 * len(blob) / units, 4),
        "neg_log2_p_bits": round(ideal, 2),
        "seconds": round(time.perf_counter() - start, 3),
    }


def cmd_decompress(args) -> dict:
    from chainrule.cli.outputs import replacing
    from chainrule.coding import decompress
    from chainrule.coding.container import read_header

    path, out, model, kind = _setup(args, True)
    start = time.perf_counter()
    blob = path.read_bytes()
    header = read_header(blob)
    data = decompress(model, blob, progress=False if args.quiet else None)
    if kind == "text":
        with replacing(out) as f:
            f.write(data.encode("utf-8"))
    else:
        write_images(out, data, header["extra"].get("array_shape", list(data.shape)))
    return {
        "in": str(path),
        "out": str(out),
        "model": args.model_dir,
        "seconds": round(time.perf_counter() - start, 3),
    }
