"""Known answers and save/load round trips for the zoo's custom layers (models/custom_layers.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.custom_layers import Highway, LocalResponseNormalization, Maxout, ScaledResidual


def _rng_images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _lrn_numpy(x, depth_radius, bias, alpha, beta):
    """Direct transcription of Krizhevsky et al.'s formula, one channel at a time."""
    out = np.empty_like(x, dtype="float64")
    c = x.shape[-1]
    for i in range(c):
        lo, hi = max(0, i - depth_radius), min(c, i + depth_radius + 1)
        denom = (bias + alpha * np.sum(x[..., lo:hi].astype("float64") ** 2, axis=-1)) ** beta
        out[..., i] = x[..., i] / denom
    return out


@pytest.mark.parametrize(
    ("depth_radius", "bias", "alpha", "beta"),
    [(2, 2.0, 1e-4, 0.75), (4, 1.0, 0.001 / 9.0, 0.75), (0, 1.0, 0.5, 0.5), (3, 0.5, 0.3, 1.0)],
)
def test_lrn_matches_numpy_formula(depth_radius, bias, alpha, beta):
    x = 3.0 * _rng_images((2, 5, 4, 7))
    layer = LocalResponseNormalization(depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, _lrn_numpy(x, depth_radius, bias, alpha, beta), rtol=1e-5)


def test_lrn_agrees_with_tensorflow_lrn():
    # An independent implementation: TensorFlow's own kernel, same parameterisation.
    x = 2.0 * _rng_images((1, 6, 6, 16))
    layer = LocalResponseNormalization(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    expected = tf.nn.local_response_normalization(
        x, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75
    ).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5)


def test_lrn_rejects_negative_radius():
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_maxout_is_max_over_consecutive_pieces(pieces):
    x = _rng_images((2, 3, 3, 4 * pieces))
    got = keras.ops.convert_to_numpy(Maxout(pieces)(x))
    expected = x.reshape(2, 3, 3, 4, pieces).max(axis=-1)
    np.testing.assert_array_equal(got, expected)  # exact: a maximum picks one of its inputs
    assert got.shape == (2, 3, 3, 4)


def test_maxout_on_dense_features_and_hand_values():
    x = np.array([[1.0, -2.0, 5.0, 3.0, 0.0, -1.0]], dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Maxout(3)(x)), [[5.0, 3.0]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Maxout(2)(x)), [[1.0, 5.0, 0.0]])


def test_maxout_rejects_indivisible_channels():
    inputs = keras.Input((5,))
    with pytest.raises(ValueError, match="divisible"):
        Maxout(2)(inputs)


@pytest.mark.parametrize("kernel_size", [None, 3])
def test_highway_closed_gate_carries_input(kernel_size):
    shape = (2, 5) if kernel_size is None else (2, 6, 6, 4)
    x = _rng_images(shape)
    layer = Highway(kernel_size=kernel_size, transform_bias=-60.0)
    # T = sigmoid(-60 + small) ~ 1e-26: the carry gate passes x through unchanged.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x, atol=1e-6)


def test_highway_open_gate_is_the_transform():
    x = _rng_images((3, 4))
    layer = Highway(activation="tanh", transform_bias=60.0)
    got = keras.ops.convert_to_numpy(layer(x))
    w, b = (keras.ops.convert_to_numpy(v) for v in (layer.h_kernel, layer.h_bias))
    np.testing.assert_allclose(got, np.tanh(x @ w + b), rtol=1e-5, atol=1e-6)


def test_highway_mixes_by_gate_value():
    # Hand-set weights: H(x) = relu(2x), T(x) = sigmoid(0) = 0.5 -> y = 0.5 relu(2x) + 0.5 x.
    layer = Highway(transform_bias=0.0)
    x = np.array([[1.0, -3.0]], dtype="float32")
    layer.build(x.shape)
    layer.h_kernel.assign(2.0 * np.eye(2, dtype="float32"))
    layer.t_kernel.assign(np.zeros((2, 2), dtype="float32"))
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, [[1.5, -1.5]], rtol=1e-6)


def test_scaled_residual():
    a, r = _rng_images((2, 3)), _rng_images((2, 3), seed=1)
    got = keras.ops.convert_to_numpy(ScaledResidual(0.17)([a, r]))
    np.testing.assert_allclose(got, a + 0.17 * r, rtol=1e-6)


def test_custom_layers_round_trip_in_safe_mode(tmp_path):
    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = LocalResponseNormalization(depth_radius=3, bias=1.5, alpha=0.01, beta=0.6, name="lrn")(x)
    x = Highway(kernel_size=3, activation="tanh", transform_bias=-1.5, name="hw")(x)
    y = Maxout(4, name="maxout")(x)
    x = ScaledResidual(0.3, name="res")([y, y])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = Highway(name="fc_highway")(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "layers.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")
    # Exact: the reloaded weights are copies, and the same graph on the same batch shape runs
    # the same kernels.
    np.testing.assert_array_equal(reloaded.predict_on_batch(images), model.predict_on_batch(images))
    lrn = reloaded.get_layer("lrn")
    assert (lrn.depth_radius, lrn.bias, lrn.alpha, lrn.beta) == (3, 1.5, 0.01, 0.6)
    assert reloaded.get_layer("hw").kernel_size == 3
    assert reloaded.get_layer("hw").transform_bias == -1.5
    assert reloaded.get_layer("maxout").num_pieces == 4
    assert reloaded.get_layer("res").scale == 0.3


def test_class_token_and_position_embedding_known_answers_and_round_trip(tmp_path):
    from models.custom_layers import ClassToken, PositionEmbedding

    x = _rng_images((2, 5, 3))
    tokens = ClassToken(2, name="cls")
    pos = PositionEmbedding(name="pos")
    inp = keras.Input((5, 3))
    model = keras.Model(inp, pos(tokens(inp)))
    cls = np.arange(6, dtype="float32").reshape(1, 2, 3)
    table = _rng_images((7, 3), seed=1)
    tokens.set_weights([cls])
    pos.set_weights([table])
    got = keras.ops.convert_to_numpy(model(x))
    expected = np.concatenate([np.repeat(cls, 2, axis=0), x], axis=1) + table[None]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert model.output.shape == (None, 7, 3)
    path = tmp_path / "tokens.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(x)), got)
    assert reloaded.get_layer("cls").count == 2
    with pytest.raises(ValueError, match="count must be a positive int"):
        ClassToken(0)
