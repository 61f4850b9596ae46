"""Data sources: every kind of input streams the same images, with stable ids and labels."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from vizkit.core.sources import image_files, index_id, open_source, read_image


def _gray_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 6, 5), dtype=np.uint8)


def _write(folder, images, names):
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names, strict=True):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image)


def _collect(source):
    batches = list(source)
    images = np.concatenate([b.images for b in batches])
    ids = [i for b in batches for i in b.ids]
    starts = [b.start for b in batches]
    return batches, images, ids, starts


def test_array_is_sliced_with_index_ids():
    x = _gray_images(7)
    batches, images, ids, starts = _collect(open_source(x, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1] and starts == [0, 3, 6]
    np.testing.assert_array_equal(images, x)  # slices of the same array: exact
    assert ids == [f"{i:03d}" for i in range(7)]
    assert batches[0].images.dtype == np.uint8  # converted later, chunk by chunk


def test_one_image_is_a_batch_of_one():
    (batch,) = open_source(np.zeros((6, 5, 3), np.float32))
    assert batch.images.shape == (1, 6, 5, 3)


def test_folder_reads_files_in_path_order_recursively_and_skips_hidden(tmp_path):
    x = _gray_images(4, seed=1)
    _write(tmp_path, x, ["b.png", "a.png", "sub/c.png", ".hidden/d.png"])
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path, batch_size=2)
    assert source.count == 3 and source.kind == "folder"
    _, images, ids, _ = _collect(source)
    assert ids == ["a", "b", "sub/c"]
    np.testing.assert_allclose(images[..., 0], x[[1, 0, 2]] / 255.0, atol=1e-7)


def test_file_list_resizes_and_converts_channels(tmp_path):
    x = _gray_images(2, seed=2)
    _write(tmp_path, x, ["one.png", "two.png"])
    source = open_source([tmp_path / "two.png", str(tmp_path / "one.png")], size=(3, 4), channels=3)
    _, images, ids, _ = _collect(source)
    assert ids == ["two", "one"] and images.shape == (2, 3, 4, 3)
    expected = cv2.resize(x[1], (4, 3), interpolation=cv2.INTER_AREA) / 255.0
    np.testing.assert_allclose(images[0, ..., 1], expected, atol=1e-6)


def test_generator_of_labelled_batches_keeps_labels_and_counts_across_batches():
    x = _gray_images(5, seed=3)
    y = np.arange(5)
    items = ((x[i : i + 2], y[i : i + 2]) for i in range(0, 5, 2))
    batches, images, ids, starts = _collect(open_source(items, batch_size=4))
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
    assert starts == [0, 2, 4] and ids[-1] == "004"


@pytest.mark.parametrize("batched", [True, False])
def test_tf_data_batched_or_not(batched):
    x = np.random.default_rng(4).random((5, 4, 4, 1)).astype(np.float32)
    y = np.arange(5)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.batch(2) if batched else ds
    batches, images, _, _ = _collect(open_source(ds, batch_size=3))
    np.testing.assert_array_equal(images, x)  # tf.data copies the float32 values unchanged
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)


def test_ray_dataset_is_streamed_without_importing_ray_elsewhere():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        x = np.random.default_rng(5).random((5, 4, 4, 1)).astype(np.float32)
        ds = ray.data.from_numpy(x)
        _, images, _, _ = _collect(open_source(ds, batch_size=2))
        np.testing.assert_array_equal(np.sort(images.ravel()), np.sort(x.ravel()))
    finally:
        ray.shutdown()


def test_read_image_scales_16_bit_and_drops_alpha(tmp_path):
    deep = np.full((3, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_allclose(read_image(tmp_path / "deep.png"), 1.0)
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 2] = 255  # red in OpenCV's BGR(A) order
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    image = read_image(tmp_path / "rgba.png")
    assert image.shape == (3, 3, 3) and np.all(image[..., 0] == 1.0) and np.all(image[..., 1:] == 0)


def test_ids_are_padded_to_the_count():
    assert index_id(7) == "007" and index_id(7, 100_000) == "00007"


def test_bad_sources_fail_with_one_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file or folder"):
        open_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        image_files(tmp_path / "empty")
    (tmp_path / "fake.png").write_text("nope")
    with pytest.raises(ValueError, match="cannot read"):
        list(open_source([tmp_path / "fake.png"]))
    with pytest.raises(TypeError, match="must be an image array, a folder"):
        open_source(3)
    with pytest.raises(ValueError, match="must have shape"):
        open_source(np.zeros(5))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        open_source(np.zeros((2, 3, 3)), batch_size=0)
