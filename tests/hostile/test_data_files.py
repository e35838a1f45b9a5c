"""Hostile data files: CSV (cells that are not small integers, empty, ragged, huge values), WAV
(truncated, wrong header), gzip bombs, BIF (a 40-parent node, cycles, unknown states, bad tables)."""

from __future__ import annotations

import functools
import struct

import pytest

from chainrule.data import load_dataset
from chainrule.graphical import parse_bif, read_bif
from tests.hostile.conftest import BIF_DIR, assert_one_line_error, bif_text, raises_chainrule, time_limit

HEADER = ",".join(f"c{i}" for i in range(4))


def _rows(cells: list[str], n: int = 40) -> str:
    return HEADER + "\n" + "\n".join(",".join(cells) for _ in range(n)) + "\n"


CSVS: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("header-only", HEADER + "\n"),
    ("floats", _rows(["0.5", "1", "0", "1"])),
    ("words", _rows(["yes", "1", "0", "1"])),
    ("negative", _rows(["-1", "1", "0", "1"])),
    ("huge-int", _rows(["1" + "0" * 30, "1", "0", "1"])),
    ("big-int-64bit", _rows([str(2**63), "1", "0", "1"])),
    ("nan", _rows(["nan", "1", "0", "1"])),
    ("inf", _rows(["inf", "1", "0", "1"])),
    ("empty-cells", _rows(["", "1", "0", "1"])),
    ("ragged", HEADER + "\n" + "0,1,0,1\n" * 20 + "0,1\n" + "0,1,0,1\n" * 20),
    ("too-many-fields", HEADER + "\n" + "0,1,0,1,1\n" * 40),
    ("duplicate-columns", "a,a,b,c\n" + "0,1,0,1\n" * 40),
    ("non-utf8", b"c0,c1\n" + b"\xff\xfe,1\n" * 40),
    ("nul-bytes", HEADER + "\n" + "0,1,\x00,1\n" * 40),
    ("one-row", HEADER + "\n0,1,0,1\n"),
]


@pytest.mark.parametrize(("case", "text"), CSVS, ids=[c for c, _ in CSVS])
def test_bad_csv_dataset(ws, case, text) -> None:
    path = ws.file("d.csv", text)
    with raises_chainrule():
        load_dataset(f"csv:{path}")


@pytest.mark.parametrize("case", ["floats", "huge-int", "ragged", "non-utf8"])
def test_bad_csv_cli(ws, case) -> None:
    path = ws.file("d.csv", dict(CSVS)[case])
    r = ws.cli(
        "train",
        ws.file("r.yaml", "model: {name: made, hidden: [8]}\ndata: {name: digits}\n"),
        "--data",
        f"csv:{path}",
        "--out",
        ws.out / "run",
    )
    assert_one_line_error(r)


def test_csv_too_many_values_per_column_bounded(ws) -> None:
    """A column whose codes reach 10^6 asks a categorical model for a million outputs per dimension:
    refused, or at least built without hanging (the case has 30 s)."""
    path = ws.file("d.csv", HEADER + "\n" + "\n".join(f"{i * 25000},1,0,1" for i in range(40)) + "\n")
    with time_limit(30):
        try:
            load_dataset(f"csv:{path}")
        except Exception as e:  # noqa: BLE001
            from chainrule.errors import ChainruleError

            assert isinstance(e, ChainruleError), repr(e)


def _wav(frames: int = 400, width: int = 2, channels: int = 1, rate: int = 8000) -> bytes:
    data = b"\x01\x00" * (frames * channels * width // 2)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, 8 * width)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


WAVS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("truncated-header", _wav()[:30]),
    ("truncated-data", _wav()[:60]),
    ("wrong-magic", b"RIFX" + _wav()[4:]),
    ("not-wave", b"RIFF" + _wav()[4:8] + b"AVI " + _wav()[12:]),
    ("zero-channels", _wav(channels=1)[:22] + struct.pack("<H", 0) + _wav()[24:]),
    ("64-bit-samples", _wav(width=8)),
    ("too-short", _wav(frames=10)),
    ("text-file", b"this is not audio\n" * 10),
    ("data-size-lies", _wav()[:40] + struct.pack("<I", 2**31) + _wav()[44:]),
]


@pytest.mark.parametrize(("case", "data"), WAVS, ids=[c for c, _ in WAVS])
def test_bad_wav(ws, case, data) -> None:
    path = ws.file("a.wav", data)
    with raises_chainrule():
        load_dataset(f"wav:{path}")


def test_bad_wav_cli(ws) -> None:
    path = ws.file("a.wav", _wav()[:60])
    r = ws.cli("eval", ws.model("wavenet"), "--data", f"wav:{path}")
    assert_one_line_error(r)


@functools.lru_cache(maxsize=2)
def _gzip_bomb(size: int) -> bytes:
    """A small gzip member that expands to `size` bytes of a repeated BIF-looking line."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"// " + b"a" * 1021 + b"\n"
    out = [c.compress(chunk * 1024) for _ in range(size // (1024 * 1024))]
    out.append(c.flush())
    return b"".join(out)


@pytest.mark.parametrize("where", ["bif", "bn-cli"])
def test_gzip_bomb_bif(ws, where, monkeypatch) -> None:
    """512 MB of comment lines in ~1.2 MB on disk (zlib packs these 1 KB lines about 450:1),
    refused by a decompression limit in bounded time. The absolute limit is lowered to 64 MiB so
    the case stays fast; the ratio limit (100x the file size) is the library's own."""
    monkeypatch.setenv("CHAINRULE_MAX_DECOMPRESSED_BYTES", str(64 * 1024**2))
    path = ws.file("bomb.bif.gz", _gzip_bomb(512 * 1024**2))
    assert path.stat().st_size < 2 * 1024**2
    if where == "bif":
        with time_limit(40), raises_chainrule():
            read_bif(path)
    else:
        assert_one_line_error(ws.cli("bn", "info", path, timeout=40))


def test_corrupt_gzip_bif(ws) -> None:
    good = (BIF_DIR / "asia.bif.gz").read_bytes()
    path = ws.file("bad.bif.gz", good[: len(good) // 2])
    with raises_chainrule():
        read_bif(path)


def _wide_bif(parents: int) -> str:
    names = [f"p{i}" for i in range(parents)]
    variables = {n: ["a", "b"] for n in [*names, "child"]}
    cpds = {n: ([], [0.5, 0.5]) for n in names}
    cpds["child"] = (names, [0.5] * 2)  # deliberately short: the size check must come first
    return bif_text(variables, cpds)


BIFS: list[tuple[str, str]] = [
    ("40-parents", _wide_bif(40)),
    (
        "cycle",
        bif_text({"a": ["0", "1"], "b": ["0", "1"]}, {"a": (["b"], [0.5] * 4), "b": (["a"], [0.5] * 4)}),
    ),
    ("self-loop", bif_text({"a": ["0", "1"]}, {"a": (["a"], [0.5] * 4)})),
    ("unknown-parent", bif_text({"a": ["0", "1"]}, {"a": (["ghost"], [0.5] * 4)})),
    ("table-too-short", bif_text({"a": ["0", "1"]}, {"a": ([], [1.0])})),
    ("negative-probability", bif_text({"a": ["0", "1"]}, {"a": ([], [1.5, -0.5])})),
    ("nan-probability", bif_text({"a": ["0", "1"]}, {"a": ([], ["nan", "nan"])})),
    ("rows-not-summing-to-one", bif_text({"a": ["0", "1"]}, {"a": ([], [0.2, 0.2])})),
    ("duplicate-states", bif_text({"a": ["x", "x"]}, {"a": ([], [0.5, 0.5])})),
    ("missing-cpd", bif_text({"a": ["0", "1"], "b": ["0", "1"]}, {"a": ([], [0.5, 0.5])})),
    ("unterminated", "network x {\n}\nvariable a {\n  type discrete [ 2 ] { y, n };\n"),
    ("empty", ""),
    ("binary", "\x00\x01\x02" * 50),
    ("huge-state-count", "network x {\n}\nvariable a {\n  type discrete [ 100000000000 ] { y, n };\n}\n"),
    (
        "row-unknown-state",
        "network x {\n}\nvariable a {\n  type discrete [ 2 ] { y, n };\n}\n"
        "variable b {\n  type discrete [ 2 ] { y, n };\n}\nprobability ( a ) {\n  table 0.5, 0.5;\n}\n"
        "probability ( b | a ) {\n  (maybe) 0.5, 0.5;\n  (y) 0.5, 0.5;\n}\n",
    ),
    ("deep-braces", "network x " + "{" * 100_000 + "}" * 100_000 + "\n"),
]


@pytest.mark.parametrize(("case", "text"), BIFS, ids=[c for c, _ in BIFS])
def test_bad_bif(case, text) -> None:
    with time_limit(20), raises_chainrule():
        parse_bif(text)


@pytest.mark.parametrize("case", ["40-parents", "cycle", "unknown-parent"])
def test_bad_bif_cli(ws, case) -> None:
    path = ws.file("n.bif", dict(BIFS)[case])
    assert_one_line_error(ws.cli("bn", "info", path, timeout=20))


def test_bif_24_parents_bounded(ws) -> None:
    """A node with 24 parents (16M-row table) must be refused by a size limit or read quickly."""
    names = [f"p{i}" for i in range(24)]
    text = bif_text({n: ["a", "b"] for n in [*names, "c"]}, {n: ([], [0.5, 0.5]) for n in names})
    text += "probability ( c | " + ", ".join(names) + " ) {\n  default 0.5, 0.5;\n}\n"
    with time_limit(30):
        try:
            parse_bif(text)
        except Exception as e:  # noqa: BLE001
            from chainrule.errors import ChainruleError

            assert isinstance(e, ChainruleError), repr(e)
