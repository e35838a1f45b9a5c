"""Memory and time bounds (huge -n streams or is refused quickly) and work safety (no run folder,
model or weights file overwritten; a second writer refused)."""

from __future__ import annotations

import resource

import pytest

from tests.hostile.conftest import assert_ok, assert_one_line_error, assert_refused_or_ok

GB = 1024**3


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize(
    ("case", "argv"),
    [
        ("sample-5M-png", ["sample", "{nade}", "-n", "5000000", "--out", "{out}/s.png"]),
        ("sample-huge-n", ["sample", "{nade}", "-n", str(10**12), "--out", "{out}/s.csv"]),
        ("generate-1e9", ["generate", "{tf}", "-n", "1000000000", "--out", "{out}/g.txt"]),
        (
            "generate-many-samples",
            ["generate", "{tf}", "-n", "10", "--samples", "1000000000", "--out", "{out}/g.txt"],
        ),
        ("bn-sample-huge-n", ["bn", "sample", "{bif}", "-n", str(10**12), "--out", "{out}/s.csv"]),
        ("eval-huge-batch", ["eval", "{nade}", "--data", "digits", "--batch-size", str(10**12)]),
    ],
)
def test_huge_requests_are_bounded(ws, case, argv) -> None:
    """Refused, or answered, within 20 s and without growing this process by more than 1.5 GB."""
    from tests.hostile.conftest import BIF_DIR

    sub = {"nade": ws.model("nade"), "tf": ws.model("tf"), "out": ws.out, "bif": BIF_DIR / "asia.bif.gz"}
    before = _rss()
    r = ws.cli(*[a.format(**sub) for a in argv], timeout=20)
    assert _rss() - before < 1.5 * GB
    assert_refused_or_ok(r)


def _fake_run(folder) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"precious checkpoint")
    (folder / "model").mkdir()
    (folder / "model" / "model.safetensors").write_bytes(b"precious weights")
    (folder / "metrics.json").write_text("{}")


def test_demo_refuses_existing_run(ws) -> None:
    run = ws.inp / "run"
    _fake_run(run)
    assert_one_line_error(ws.cli("demo", "--epochs", "1", "--out", run))


def test_train_refuses_existing_run(ws) -> None:
    run = ws.inp / "run"
    _fake_run(run)
    recipe = ws.file(
        "r.yaml", "model: {name: nade, hidden: 8}\ndata: {name: digits}\ntrain: {max_epochs: 1}\n"
    )
    assert_one_line_error(ws.cli("train", recipe, "--out", run))


def test_train_refuses_locked_folder(ws) -> None:
    """A lock file held by a live process (this one) refuses a second writer."""
    import os

    run = ws.inp / "run"
    run.mkdir()
    for name in (".lock", "chainrule.lock", ".chainrule.lock"):
        (run / name).write_text(str(os.getpid()))
    recipe = ws.file(
        "r.yaml", "model: {name: nade, hidden: 8}\ndata: {name: digits}\ntrain: {max_epochs: 1}\n"
    )
    r = ws.cli("train", recipe, "--out", run)
    assert_one_line_error(r)


def test_bn_sample_does_not_overwrite_its_input(ws) -> None:
    """`bn sample X.bif --out X.bif` would replace the network by samples: refused."""
    import gzip

    from tests.hostile.conftest import BIF_DIR

    bif = ws.file("asia.bif", gzip.decompress((BIF_DIR / "asia.bif.gz").read_bytes()))
    assert_one_line_error(ws.cli("bn", "sample", bif, "-n", "3", "--out", bif))


def test_sample_csv_into_new_folder_creates_only_that_path(ws) -> None:
    r = ws.cli("sample", ws.model("nade"), "-n", "2", "--out", ws.out / "deep" / "s.csv")
    assert_refused_or_ok(r)
    if r.code == 0:
        assert sorted(p.name for p in (ws.out / "deep").iterdir()) == ["s.csv"]


def test_generate_n_100k_streams(ws) -> None:
    """A long generation to a file finishes and has the asked length (tiny model, KV cache)."""
    r = ws.cli("generate", ws.model("rnn"), "-n", "20000", "--out", ws.out / "g.txt", timeout=60)
    assert_ok(r)
    assert len((ws.out / "g.txt").read_text().rstrip("\n")) == 20000


@pytest.mark.parametrize("command", ["sample-npy", "generate", "bn-sample"])
def test_an_output_folder_that_refuses_files_is_one_line(ws, monkeypatch, command) -> None:
    """A read-only or immutable folder (EROFS, EPERM: even root cannot write there) used to give
    an internal error from the temporary file the output is written through."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    argv = {
        "sample-npy": ["sample", ws.model("nade"), "-n", "2", "--out", ws.out / "s.npy"],
        "generate": ["generate", ws.model("rnn"), "-n", "5", "--out", ws.out / "g.txt"],
        "bn-sample": [
            "bn",
            "sample",
            ws.repo_copy("tests/data/bif/asia.bif.gz"),
            "-n",
            "5",
            "--out",
            ws.out / "a.csv",
        ],
    }[command]
    r = ws.cli(*argv)
    assert_one_line_error(r, match="could not write")
    assert "Read-only file system" in r.stderr


def test_an_output_folder_below_a_file_says_so(ws) -> None:
    (ws.out / "afile").write_text("x")
    r = ws.cli("train", ws.repo_copy("recipes/csv.yaml"), "--out", ws.out / "afile" / "run")
    assert_one_line_error(r, match="is a file, not a folder")
