"""vizkit.filters: hand-set kernels come back exactly, rescaled as documented."""

import keras
import numpy as np
import pytest
from helpers import conv_model, small_cnn

from vizkit import filters
from vizkit.methods.filters import kernel_layer_paths


def minmax(a):
    return (a - a.min()) / (a.max() - a.min())


@pytest.fixture
def rgb_kernel():
    return np.random.default_rng(1).normal(size=(3, 3, 3, 4)).astype(np.float32)


def test_first_layer_rgb_kernels_come_back_per_filter_minmax(rgb_kernel):
    model = conv_model(rgb_kernel, input_shape=(8, 8, 3))
    tiles = filters(model, "conv")
    assert tiles.shape == (4, 3, 3, 3)
    assert tiles.dtype == np.float32
    for f in range(4):
        np.testing.assert_allclose(tiles[f], minmax(rgb_kernel[..., f]), atol=1e-6)


def test_symmetric_scale_keeps_zero_at_half(rgb_kernel):
    model = conv_model(rgb_kernel, input_shape=(8, 8, 3))
    tiles = filters(model, 0, scale="symmetric")
    peak = np.abs(rgb_kernel).max()
    expected = 0.5 + np.transpose(rgb_kernel, (3, 0, 1, 2)) / (2 * peak)
    np.testing.assert_allclose(tiles, expected, atol=1e-6)
    assert tiles.min() >= 0 and tiles.max() <= 1


def test_deep_kernels_per_channel_and_mean():
    kernel = np.arange(2 * 2 * 5 * 3, dtype=np.float32).reshape(2, 2, 5, 3) % 7 - 3
    model = conv_model(kernel, input_shape=(6, 6, 5))
    per_channel = filters(model, "conv", mode="channels")
    assert per_channel.shape == (15, 2, 2, 1)
    # Tile f * c_in + i is channel i of filter f; one scale per filter across its channels.
    f, i = 2, 4
    k = kernel[..., f]
    expected = (k[..., i] - k.min()) / (k.max() - k.min())
    np.testing.assert_allclose(per_channel[f * 5 + i, ..., 0], expected, atol=1e-6)
    mean = filters(model, "conv", mode="mean")
    assert mean.shape == (3, 2, 2, 1)
    np.testing.assert_allclose(mean[1, ..., 0], minmax(kernel[..., 1].mean(-1)), atol=1e-6)
    # "auto" on a 5-channel kernel averages, like "mean".
    np.testing.assert_array_equal(filters(model, "conv"), mean)


def test_constant_filter_is_mid_gray():
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[:, :, 0, 1] = np.eye(3)
    tiles = filters(conv_model(kernel), "conv")
    np.testing.assert_array_equal(tiles[0], 0.5)
    np.testing.assert_array_equal(tiles[1, ..., 0], np.eye(3))


def test_dense_after_flatten_reshapes_to_the_flattened_map():
    model = keras.Sequential(
        [keras.Input((4, 5, 1)), keras.layers.Flatten(), keras.layers.Dense(3, name="fc")]
    )
    w = np.random.default_rng(2).normal(size=(20, 3)).astype(np.float32)
    model.get_layer("fc").set_weights([w, np.zeros(3, np.float32)])
    tiles = filters(model, "fc")
    assert tiles.shape == (3, 4, 5, 1)
    np.testing.assert_allclose(tiles[2, ..., 0], minmax(w[:, 2].reshape(4, 5)), atol=1e-6)


def test_dense_on_flat_input_and_raw_rbm_matrix_are_square_images():
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(2, name="hidden")])
    assert filters(model, "hidden").shape == (2, 28, 28, 1)
    w = np.random.default_rng(3).normal(size=(784, 5)).astype(np.float32)
    tiles = filters(w)
    assert tiles.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(tiles[4, ..., 0], minmax(w[:, 4].reshape(28, 28)), atol=1e-6)

    class FakeRBM:
        weights = w

    np.testing.assert_array_equal(filters(FakeRBM()), tiles)
    assert filters(w[:60], image_shape=(6, 10)).shape == (5, 6, 10, 1)


def test_errors_name_the_problem():
    model = small_cnn()
    with pytest.raises(
        ValueError, match=r"no kernel.*layers with kernels: \['conv1', 'conv2', 'dense'\]"
    ):
        filters(model, "pool1")
    with pytest.raises(ValueError, match="mode must be one of"):
        filters(model, "conv1", mode="rgb")
    with pytest.raises(ValueError, match="image_shape"):
        filters(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="does not hold"):
        filters(np.zeros((10, 2)), image_shape=(3, 3))
    assert kernel_layer_paths(model) == ["conv1", "conv2", "dense"]


def test_default_layer_is_the_first_with_a_kernel_and_deterministic():
    model = small_cnn()
    first = filters(model)
    np.testing.assert_array_equal(first, filters(model, "conv1"))
    np.testing.assert_array_equal(first, filters(model))


def test_an_rbm_object_gives_one_tile_per_hidden_unit():
    models = pytest.importorskip("models")
    rbm = models.RBM(16, 3, seed=1)
    tiles = filters(rbm)
    assert tiles.shape == (3, 4, 4, 1)
    np.testing.assert_allclose(tiles[1, ..., 0], minmax(rbm.weights[:, 1].reshape(4, 4)), atol=1e-6)
