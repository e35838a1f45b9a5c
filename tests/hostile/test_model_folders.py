"""Damaged and hostile model folders: missing files, corrupt or flipped weights, a pickle named
model.safetensors (never unpickled), config.json with wrong types, nulls, deep nesting, unknown
models, a mismatched image_shape, no weights_sha256."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from chainrule.persistence import load
from tests.hostile.conftest import assert_one_line_error, raises_chainrule


class Boom:
    """Unpickling this would create a marker file: the proof that a pickle was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _config(folder):
    return json.loads((folder / "config.json").read_text())


def _write_config(folder, config) -> None:
    (folder / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)


def _args(**changes):
    def edit(c):
        c["args"].update(changes)
        return c

    return edit


def _set(key, value):
    def edit(c):
        c[key] = value
        return c

    return edit


def _drop(key):
    def edit(c):
        c.pop(key)
        return c

    return edit


CONFIG_EDITS = [
    ("args-is-list", _set("args", [64, 8])),
    ("args-null", _set("args", None)),
    ("model-null", _set("model", None)),
    ("model-list", _set("model", ["nade"])),
    ("model-unknown", _set("model", "gpt-5")),
    ("dim-null", _args(dim=None)),
    ("dim-string", _args(dim="64")),
    ("dim-list", _args(dim=[64])),
    ("dim-negative", _args(dim=-64)),
    ("dim-float", _args(dim=64.0)),
    ("dim-bool", _args(dim=True)),
    ("dim-huge", _args(dim=10**30)),
    ("hidden-zero", _args(hidden=0)),
    ("unknown-arg", _args(width=3)),
    ("image-shape-mismatch", _args(image_shape=[7, 7])),
    ("image-shape-strings", _args(image_shape=["8", "8"])),
    ("image-shape-negative", _args(image_shape=[-8, -8])),
    ("order-not-permutation", _args(order=[0] * 64)),
    ("deep-nesting-args", lambda c: '{"model": "nade", "args": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("config-is-list", lambda c: "[1, 2, 3]"),
    ("config-not-json", lambda c: "model = nade"),
    ("config-non-utf8", lambda c: b'{"model": "nade\xff"}'.decode("latin-1")),
    ("config-nan-dim", lambda c: json.dumps(c).replace('"dim": 64', '"dim": NaN')),
    ("weights-sha-missing", _drop("weights_sha256")),
    ("weights-sha-list", _set("weights_sha256", ["abc"])),
    ("weights-sha-wrong", _set("weights_sha256", "0" * 64)),
    ("format-version-future", _set("format_version", 999)),
]


@pytest.mark.parametrize(("case", "edit"), CONFIG_EDITS, ids=[c for c, _ in CONFIG_EDITS])
def test_bad_config_python(ws, case, edit) -> None:
    folder = ws.model("nade")
    _write_config(folder, edit(_config(folder)))
    with raises_chainrule():
        load(folder)


@pytest.mark.parametrize(
    "case", ["args-is-list", "deep-nesting-args", "image-shape-mismatch", "weights-sha-missing", "dim-null"]
)
def test_bad_config_cli(ws, case) -> None:
    folder = ws.model("nade")
    _write_config(folder, dict(CONFIG_EDITS)[case](_config(folder)))
    assert_one_line_error(ws.cli("sample", folder, "-n", "2", "--out", ws.out / "s.png"))


def _damage_weights(folder, how: str) -> None:
    w = folder / "model.safetensors"
    data = bytearray(w.read_bytes())
    if how == "missing":
        w.unlink()
    elif how == "empty":
        w.write_bytes(b"")
    elif how == "truncated":
        w.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "flipped-bits":
        for i in range(len(data) - 1, len(data) - 200, -7):
            data[i] ^= 0x10
        w.write_bytes(bytes(data))
    elif how == "header-garbage":
        w.write_bytes(b"\xff" * 8 + bytes(data[8:]))
    elif how == "huge-header-length":
        w.write_bytes((2**62).to_bytes(8, "little") + bytes(data[8:]))
    elif how == "folder":
        w.unlink()
        w.mkdir()


WEIGHT_DAMAGE = [
    "missing",
    "empty",
    "truncated",
    "flipped-bits",
    "header-garbage",
    "huge-header-length",
    "folder",
]


@pytest.mark.parametrize("how", WEIGHT_DAMAGE)
def test_damaged_weights_python(ws, how) -> None:
    folder = ws.model("nade")
    _damage_weights(folder, how)
    with raises_chainrule():
        load(folder)


@pytest.mark.parametrize("how", ["truncated", "flipped-bits"])
def test_damaged_weights_cli(ws, how) -> None:
    folder = ws.model("nade")
    _damage_weights(folder, how)
    assert_one_line_error(ws.cli("eval", folder, "--data", "digits", "-n", "4"))


@pytest.mark.parametrize("sha", ["keep", "drop"])
def test_flipped_bits_without_sha_refused(ws, sha) -> None:
    """Flipped bits in a folder that has no weights_sha256 must not load silently."""
    folder = ws.model("nade")
    _damage_weights(folder, "flipped-bits")
    config = _config(folder)
    if sha == "drop":
        config.pop("weights_sha256")
    _write_config(folder, config)
    with raises_chainrule():
        load(folder)


@pytest.mark.parametrize("with_sha", [True, False])
def test_pickle_named_safetensors_never_unpickled(ws, with_sha) -> None:
    import hashlib

    folder = ws.model("nade")
    marker = ws.root / "unpickled-marker"
    data = pickle.dumps(Boom(str(marker)))
    (folder / "model.safetensors").write_bytes(data)
    config = _config(folder)
    if with_sha:
        config["weights_sha256"] = hashlib.sha256(data).hexdigest()
    else:
        config.pop("weights_sha256")
    _write_config(folder, config)
    with raises_chainrule():
        load(folder)
    assert not marker.exists(), "a pickle was loaded"
    r = ws.cli("eval", folder, "--data", "digits", "-n", "4")
    assert_one_line_error(r)
    assert not marker.exists(), "a pickle was loaded"


@pytest.mark.parametrize("missing", ["config.json", "everything"])
def test_missing_files(ws, missing) -> None:
    folder = ws.model("nade")
    if missing == "everything":
        for f in folder.iterdir():
            f.unlink()
    else:
        (folder / missing).unlink()
    with raises_chainrule():
        load(folder)
    assert_one_line_error(ws.cli("sample", folder, "-n", "2", "--out", ws.out / "s.png"))


def test_weights_of_another_model(ws) -> None:
    nade, vae = ws.model("nade"), ws.model("vae")
    (nade / "model.safetensors").write_bytes((vae / "model.safetensors").read_bytes())
    config = _config(nade)
    config["weights_sha256"] = _config(vae)["weights_sha256"]
    _write_config(nade, config)
    with raises_chainrule():
        load(nade)


def test_classifier_folder_as_model(ws) -> None:
    folder = ws.model("nade")
    config = _config(folder)
    config["classifier"] = config.pop("model")
    _write_config(folder, config)
    with raises_chainrule():
        load(folder, kind="model")


@pytest.mark.parametrize("command", ["sample", "eval", "complete"])
def test_nan_weights_saved_with_their_checksum_are_refused(ws, command) -> None:
    """A diverged training saves NaN weights with a valid checksum; `sample` used to draw from
    them without a word (all-zero images). Loading refuses them, naming the parameter."""
    from safetensors.torch import load_file, save_file

    from chainrule.persistence import rehash

    folder = ws.model("nade")
    tensors = load_file(folder / "model.safetensors")
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, folder / "model.safetensors")
    config = _config(folder)
    config.pop("weights_sha256")
    _write_config(folder, config)
    rehash(folder)
    with raises_chainrule(f"parameter {name} holds 1 NaN"):
        load(folder)
    args = {
        "sample": ["-n", "2", "--out", ws.out / "s.npy"],
        "eval": ["--data", "digits", "-n", "4"],
        "complete": ["--data", "digits", "-n", "2", "--out", ws.out / "c.png"],
    }[command]
    assert_one_line_error(ws.cli(command, folder, *args), match="NaN or infinite")


def test_a_size_too_large_to_allocate_is_one_line(ws) -> None:
    """A MemoryError without a message used to become an IndexError in the error path."""
    folder = ws.model("nade")
    _write_config(folder, _args(dim=10**12, image_shape=None)(_config(folder)))
    assert_one_line_error(ws.cli("eval", folder, "--data", "digits", "-n", "4"))


def test_a_classifier_error_without_a_message_is_one_line(monkeypatch) -> None:
    """The classifier twin of the case above: an error with an empty message (a bare
    MemoryError) used to become an IndexError while the message was being written."""
    import chainrule.classifiers  # noqa: F401 - registers the classifiers
    from chainrule import persistence

    def no_memory(**kwargs):
        raise MemoryError()

    monkeypatch.setitem(persistence.CLASSIFIER_REGISTRY, "cnn", no_memory)
    with raises_chainrule("bad classifier arguments \\(not enough memory"):
        persistence._build({"classifier": "cnn", "args": {}}, "classifier", Path("saved"))
