"""Compression with a model: bits per image on binarized MNIST test images and bits per character
on Shakespeare's test text, by arithmetic coding with each zoo model's conditionals, next to
gzip/bz2/xz on the same data (chainrule.coding; docs/tasks/compression.md).

    OMP_NUM_THREADS=1 python -m benchmarks.compression      # -> benchmarks/results/compression.json
    python -m benchmarks.compression --only transformer-shakespeare   # re-measure one model's row


For every model row: the compressed file's size (header included), the code alone, the model's
-log2 p(x) summed over the data (the code must stay within 1 % of it), and an exact round trip on
the first `decoded` images or characters (the slow models decode a prefix of the stream only).
Images: gzip/bz2/xz compress the n images as one stream, packed 8 pixels a byte (np.packbits)
and one byte a pixel; text: the UTF-8 bytes.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import math
import time
from datetime import UTC, datetime

import numpy as np
import torch

from benchmarks.common import RESULTS, write_result
from chainrule.coding import compress
from chainrule.coding.container import unpack
from chainrule.coding.model_coder import DEFAULT_CHUNK, decode_images, decode_tokens
from chainrule.data import load_dataset
from chainrule.persistence import load

IMAGE_MODELS = ("fvsbn-mnist", "nade-mnist", "made-mnist", "pixelcnn-mnist")
TEXT_MODELS = ("lstm-shakespeare", "transformer-shakespeare")
#: Models too slow to decode everything: they decode the first chunk of images only.
SLOW = {"pixelcnn-mnist"}


def baselines(data: bytes, per: int, label: str) -> list[dict]:
    """gzip, bz2 and xz (strongest settings) of `data`, in bits per unit (`per` units)."""
    sizes = {
        "gzip": len(gzip.compress(data, 9)),
        "bz2": len(bz2.compress(data, 9)),
        "xz": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    }
    return [
        {"coder": f"{name} ({label})", "bytes": b, "bits_per_unit": 8 * b / per} for name, b in sizes.items()
    ]


def model_row(name: str, data, units: int, decode_units: int) -> dict:
    """Compress `data` with zoo/`name`, then decode the first `decode_units` units and compare."""
    model = load(f"zoo/{name}")
    model.eval()
    text = isinstance(data, str)
    start = time.perf_counter()
    blob = compress(model, data, progress=False)
    encode_s = time.perf_counter() - start
    _, code = unpack(blob)
    with torch.no_grad():
        x = model.encode(data)[None] if text else data
        ideal = float(-model.log_prob(x).double().sum()) / math.log(2)
    start = time.perf_counter()
    if text:
        ok = model.decode(decode_tokens(model, code, decode_units, progress=False)) == data[:decode_units]
    else:
        ok = torch.equal(
            decode_images(model, code, decode_units, DEFAULT_CHUNK, progress=False), data[:decode_units]
        )
    decode_s = time.perf_counter() - start
    row = {
        "coder": f"arithmetic + zoo/{name}",
        "bytes": len(blob),
        "bits_per_unit": 8 * len(blob) / units,
        "code_bits_per_unit": 8 * len(code) / units,
        "neg_log2_p_per_unit": ideal / units,
        "overhead_percent": 100 * (8 * len(code) - ideal) / ideal,
        "file_overhead_percent": 100 * (8 * len(blob) - ideal) / ideal,
        "round_trip_exact": bool(ok),
        "decoded": decode_units,
        "encode_seconds": round(encode_s, 2),
        "decode_seconds": round(decode_s, 2),
    }
    print(row, flush=True)
    return row


def test_images(n: int) -> torch.Tensor:
    """The first `n` binarized MNIST test images, as 0/1 integers."""
    return load_dataset("binarized-mnist").split("test")[:n].round().long()


def test_text(chars: int) -> str:
    """The first `chars` characters of Shakespeare's test plays."""
    return load_dataset("shakespeare").texts["test"][:chars]


def refresh_rows(only: list[str]) -> None:
    """Re-measure the rows of the zoo models in `only` (after one was republished) and keep every
    other row of the last results file; each re-measured row carries its own date."""
    path = RESULTS / "compression.json"
    if not path.exists():
        raise SystemExit(f"{path} does not exist yet: run the whole benchmark first")
    result = json.loads(path.read_text())
    unknown = sorted(set(only) - set(IMAGE_MODELS) - set(TEXT_MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {IMAGE_MODELS + TEXT_MODELS}")
    today = datetime.now(UTC).isoformat(timespec="seconds")
    for part, models in (("images", IMAGE_MODELS), ("text", TEXT_MODELS)):
        data = None
        for i, row in enumerate(result[part]["rows"]):
            name = row["coder"].removeprefix("arithmetic + zoo/")
            if name not in only or name not in models:
                continue
            if data is None:
                data = (
                    test_text(result["text"]["chars"])
                    if part == "text"
                    else test_images(result["images"]["n"])
                )
            units = len(data)
            decode = row["decoded"]
            result[part]["rows"][i] = {**model_row(name, data, units, decode), "date": today}
    result.pop("machine", None)  # this machine's, written afresh
    write_result("compression", result)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1000, help="binarized MNIST test images (default 1000)")
    p.add_argument("--chars", type=int, default=20_000, help="Shakespeare test characters (default 20000)")
    p.add_argument("--decode-chars", type=int, default=5000, help="characters decoded back (default 5000)")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="MODEL",
        help="re-measure only these zoo models' rows (same data sizes) and keep the other rows",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.only:
        refresh_rows(args.only)
        return
    images = test_images(args.n)
    bits = images.numpy().astype(np.uint8)
    image_rows = baselines(np.packbits(bits, axis=1).tobytes(), args.n, "packbits")
    image_rows += baselines(bits.tobytes(), args.n, "one byte a pixel")
    for name in IMAGE_MODELS:
        image_rows.append(
            model_row(name, images, args.n, min(args.n, DEFAULT_CHUNK) if name in SLOW else args.n)
        )
    text = test_text(args.chars)
    text_rows = baselines(text.encode("utf-8"), len(text), "UTF-8 bytes")
    for name in TEXT_MODELS:
        text_rows.append(model_row(name, text, len(text), min(len(text), args.decode_chars)))
    write_result(
        "compression",
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "images": {"data": "binarized-mnist test", "n": args.n, "unit": "image", "rows": image_rows},
            "text": {"data": "shakespeare test", "chars": len(text), "unit": "char", "rows": text_rows},
            "notes": "bits_per_unit counts the whole file (header included); overhead_percent compares the"
            " arithmetic code alone with -log2 p(x) summed over the data. Run under OMP_NUM_THREADS=1,"
            " nice, while other jobs shared the 2 CPU cores.",
        },
    )


if __name__ == "__main__":
    main()
