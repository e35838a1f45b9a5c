"""Values are checked where they enter, runs never overwrite each other, saved models are always
checked: each case asserts a one-line ChainruleError (or the right behaviour)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import chainrule
from chainrule.errors import ChainruleError
from chainrule.models import NADE, build_model
from chainrule.persistence import load, read_config, rehash, save
from chainrule.recipes import load_recipe
from chainrule.training import TrainConfig, fit
from chainrule.training.config import check_accelerator
from chainrule.training.run_folder import LOCK, claim_run_folder, launch_rank
from chainrule.training.run_record import check_resume, run_record, write_run_record

SRC = Path(chainrule.__file__).resolve().parents[1]
RECIPE = (
    "model: {name: nade, hidden: 4}\ndata: {name: bars-3}\n"
    "train: {batch_size: 4, max_epochs: 1, progress: false}\n"
)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    return path


# -- 1. values where they enter ------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, message",
    [
        ("train.progress=maybe", "train.progress must be true or false"),
        ("train.progress=yes", "train.progress must be true or false"),
        ("train.warmup_steps=-1", "train.warmup_steps must be an integer >= 0"),
        ("train.lr=abc", "train.lr must be a finite number"),
        ("train.lr=-0.1", "train.lr must be a finite number >= 0"),
        ("train.lr=.nan", "train.lr must be a finite number"),
        ("train.batch_size=2.5", "train.batch_size must be a positive integer"),
        ("train.max_epochs=0", "train.max_epochs must be a positive integer"),
        ("train.max_minutes=-1", "train.max_minutes must be > 0"),
        ("train.ema_decay=1", "train.ema_decay must be a number in [0, 1)"),
        ("train.seed=99999999999999999999", "train.seed must be an integer in [0, 2**32)"),
        ("train.seed=-1", "train.seed must be an integer in [0, 2**32)"),
        ("train.compile=[1]", "train.compile must be true or false"),
        ("train=5", "must look like section.key=value"),
        ("model.name.x=1", "name is not a section"),
        ("model.hidden=abc", "hidden must be an integer"),
        ("model.hidden=0", "hidden must be positive"),
        ("model.image_shape=[7, 7]", "image_shape [7, 7] holds 49 values"),
        ("model.name=[1]", "unknown model"),
        ("data.name=5", "data.name must be a string"),
        ("out=[1]", "`out` must be a folder path"),
    ],
)
def test_bad_override_is_one_line(recipe, override, message) -> None:
    from chainrule.recipes import build_from_recipe

    with pytest.raises(ChainruleError) as e:
        build_from_recipe(load_recipe(recipe, [override]))
    assert message in one_line(e)


def test_exponent_floats_and_yaml_booleans(recipe) -> None:
    r = load_recipe(recipe, ["train.lr=3e-4", "train.progress=true"])
    assert r["train"]["lr"] == 3e-4 and r["train"]["progress"] is True


def test_non_utf8_recipe(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"model: {name: nade}\n\xff\xfe")
    with pytest.raises(ChainruleError, match="not UTF-8"):
        load_recipe(path)


def test_gpu_without_cuda(recipe) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ChainruleError, match="no CUDA GPU is available"):
        load_recipe(recipe, ["train.accelerator=gpu"])  # a GPU recipe is valid anywhere
        check_accelerator("gpu", 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dim": 784, "image_shape": [7, 7]}, "image_shape [7, 7] holds 49 values"),
        ({"dim": "abc"}, "dim must be an integer"),
        ({"dim": 4.0}, "dim must be an integer"),
        ({"dim": 4, "hidden": True}, "hidden must be an integer"),
        ({"dim": 4, "hidden": -3}, "hidden must be positive"),
        ({"dim": 4, "order": "abc"}, "order must be a list of integers or null"),
    ],
)
def test_bad_model_arguments(kwargs, message) -> None:
    with pytest.raises(ChainruleError) as e:
        build_model("nade", **kwargs)
    assert message in one_line(e)
    with pytest.raises(ChainruleError):  # the Python API is checked the same way
        NADE(**kwargs)


def test_other_models_arguments() -> None:
    with pytest.raises(ChainruleError, match="dropout must be in"):
        build_model("transformer", num_values=5, dropout=1.5)
    with pytest.raises(ChainruleError, match="min_scale must be > 0"):
        build_model("rnade", dim=3, min_scale=0)
    with pytest.raises(ChainruleError, match="seed must be an integer in"):
        build_model("made", dim=3, hidden=4, seed=2**70)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "must hold a JSON object"),
        ("null", "must hold a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"model": ["nade"], "args": {}}', "'model' must be a model name"),
        ('{"model": "nade", "args": [1]}', "'args' must be an object"),
        ('{"model": "nade", "args": null}', "'args' must be an object"),
        ('{"model": "nade", "args": {"dim": 4}, "weights_sha256": 5}', "'weights_sha256' must be"),
        ('{"model": "nade", "args": {"dim": 4}, "weights_sha256": "xyz"}', "64 lowercase hex digits"),
        ('{"model": "nade", "args": {"dim": 4}, "format_version": 99}', "format_version 99"),
        ('{"model": "nade", "args": {"dim": [4]}}', "dim must be an integer"),
        ('{"model": "nade", "args": {"dim": 784, "image_shape": [7, 7]}}', "image_shape [7, 7]"),
    ],
)
def test_malformed_config_json(tmp_path, text, message) -> None:
    folder = save(NADE(4, hidden=2), tmp_path / "m")
    (folder / "config.json").write_text(text)
    with pytest.raises(ChainruleError) as e:
        load(folder)
    assert message in one_line(e)


def test_metrics_json_never_holds_nan(tmp_path) -> None:
    from chainrule.persistence import atomic_write_json

    atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [None, 1.0]}


def claim(out: Path, **options) -> None:
    with claim_run_folder(out, **options):
        pass


# -- 2. never lose or overwrite work -------------------------------------------------------------
def cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_out_is_a_file_or_has_no_parent(tmp_path, recipe) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ChainruleError, match="is an existing file"):
        claim(tmp_path / "file")
    with pytest.raises(ChainruleError, match="its parent .* does not exist"):
        claim(tmp_path / "typo" / "deeper" / "run")
    assert not (tmp_path / "typo").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ChainruleError, match="cannot create output folder"):
            claim(ro / "run")
    finally:
        ro.chmod(0o755)


def test_lock_refuses_a_second_writer_and_is_removed(tmp_path) -> None:
    out = tmp_path / "run"
    with claim_run_folder(out):
        record = json.loads((out / LOCK).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with claim_run_folder(out):  # the same process nests (demo -> fit)
            pass
        assert (out / LOCK).is_file()
        # another live process holding it: this process's parent stands in for it
        (out / LOCK).write_text(json.dumps({**record, "pid": os.getppid(), "process_start": None}))
        from chainrule.training import run_folder

        run_folder._HELD.clear()
        with pytest.raises(ChainruleError, match=f"in use by another run \\(pid {os.getppid()}"):
            claim(out)
        (out / LOCK).write_text(json.dumps(record))
    assert not (out / LOCK).exists()


def test_lock_is_removed_on_error(tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), claim_run_folder(out):
        raise RuntimeError("boom")
    assert not (out / LOCK).exists()


def test_stale_lock_is_taken_over_with_a_warning(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (out / LOCK).write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"})
    )
    with pytest.warns(UserWarning, match="taking over a stale lock"), claim_run_folder(out):
        assert json.loads((out / LOCK).read_text())["pid"] == os.getpid()
    assert not (out / LOCK).exists()


def test_only_rank_zero_claims(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_rank(2) == 1
    with claim_run_folder(tmp_path / "run", devices=2):
        assert not (tmp_path / "run").exists()  # rank 0 makes and locks it


def test_existing_run_needs_resume_or_force(tmp_path) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_text("x")
    with pytest.raises(ChainruleError, match="already holds a run .*--resume .*--force"):
        claim(out)
    with claim_run_folder(out, force=True):
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ChainruleError, match="which no run writes"):
        claim(out, force=True)
    assert (out / "mine.txt").read_text() == "keep"
    with pytest.raises(ChainruleError, match="give one of them"):
        claim(out, force=True, resume=True)


def test_demo_refuses_an_existing_run(tmp_path) -> None:
    out = tmp_path / "demo"
    (out / "model").mkdir(parents=True)
    (out / "model" / "config.json").write_text("{}")
    run = cli("demo", "--out", str(out), "--epochs", "1")
    assert run.returncode != 0 and "already holds a run" in run.stderr and "Traceback" not in run.stderr
    assert (out / "model" / "config.json").read_text() == "{}"


def test_the_demo_gives_one_result_whatever_ran_before(tmp_path) -> None:
    """The demo seeds its model's initial weights (as recipes do), not only training: two runs
    after different draws from the global generator report the same test NLL."""
    from chainrule.cli.demo import run_demo

    results = []
    for n, before in enumerate((1, 2)):
        torch.manual_seed(before)
        torch.rand(before)
        results.append(run_demo(tmp_path / f"demo-{n}", epochs=1)["test"]["nll_nats"])
    assert results[0] == results[1]


def test_resume_with_another_model_or_data_is_refused(tmp_path) -> None:
    from chainrule.data import load_dataset

    data = load_dataset("bars-3")
    model = NADE(data.dim, hidden=4)
    write_run_record(tmp_path, run_record(model, data, TrainConfig()))
    check_resume(tmp_path, run_record(model, data, TrainConfig(lr=0.5, max_epochs=9)))  # allowed
    with pytest.raises(ChainruleError, match=r"model.hidden \(4 -> 5\)"):
        check_resume(tmp_path, run_record(NADE(data.dim, hidden=5), data, TrainConfig()))
    with pytest.raises(ChainruleError, match=r"train.batch_size \(128 -> 64\), train.seed \(0 -> 1\)"):
        check_resume(tmp_path, run_record(model, data, TrainConfig(batch_size=64, seed=1)))
    other = load_dataset("bars-3")
    other.train = 1 - other.train
    with pytest.raises(ChainruleError, match="data.train_sha256"):
        check_resume(tmp_path, run_record(model, other, TrainConfig()))


def test_cli_train_twice_then_force_and_resume_checks(tmp_path, recipe) -> None:
    out = tmp_path / "run"
    assert cli("train", str(recipe), "--out", str(out), "--no-test").returncode == 0
    assert (out / "run.json").is_file() and not (out / LOCK).exists()
    again = cli("train", str(recipe), "--out", str(out), "--no-test")
    assert again.returncode != 0 and "already holds a run" in again.stderr
    changed = cli("train", str(recipe), "--out", str(out), "--resume", "model.hidden=6", "--no-test")
    assert changed.returncode != 0 and "model.hidden (4 -> 6)" in changed.stderr
    assert "Traceback" not in changed.stderr


# -- 4. integrity --------------------------------------------------------------------------------
def test_save_always_records_the_sha256(tmp_path) -> None:
    folder = save(NADE(4, hidden=2), tmp_path / "m")
    assert len(read_config(folder)["weights_sha256"]) == 64


def test_a_model_without_sha256_is_refused_until_rehashed(tmp_path) -> None:
    model = NADE(4, hidden=2)
    folder = save(model, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    digest = config.pop("weights_sha256")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ChainruleError, match="records no weights_sha256.*rehash") as e:
        load(folder)
    one_line(e)
    assert rehash(folder) == digest
    x = torch.zeros(2, 4)
    assert torch.equal(load(folder).log_prob(x), model.eval().log_prob(x))


def test_rehash_refuses_weights_that_changed(tmp_path) -> None:
    folder = save(NADE(4, hidden=2), tmp_path / "m")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChainruleError, match="changed since they were saved"):
        rehash(folder)


def test_every_zoo_model_records_its_sha256() -> None:
    zoo = Path(__file__).resolve().parents[1] / "zoo"
    for folder in sorted(zoo.iterdir()):
        if (folder / "config.json").is_file():
            assert "weights_sha256" in json.loads((folder / "config.json").read_text()), folder.name


def test_fit_refuses_a_second_concurrent_run(tmp_path) -> None:
    from chainrule.data import load_dataset

    out = tmp_path / "run"
    data = load_dataset("bars-3")
    with claim_run_folder(out):
        from chainrule.training import run_folder

        run_folder._HELD.clear()  # as if another process held it
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ChainruleError, match="in use by another run"):
                fit(
                    NADE(data.dim, hidden=2),
                    data,
                    TrainConfig(batch_size=4, max_epochs=1, progress=False),
                    out,
                )
