"""Grad-CAM and Grad-CAM++ on hand-built conv models with known answers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import EPS32, assert_close_f32, chain_terms

import vizkit


def identity_cam_model(shape=(8, 8, 1), pool=False):
    """conv1x1 copies the image into channel 0 and its negative into channel 1; class c reads
    channel c through global average pooling, so class 0's Grad-CAM is the image itself."""
    layers = [
        keras.Input(shape),
        keras.layers.Conv2D(2, 1, activation="relu", name="conv"),
    ]
    if pool:
        layers.append(keras.layers.AveragePooling2D(2, name="pool"))
    layers += [
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ]
    m = keras.Sequential(layers)
    m.get_layer("conv").set_weights([np.array([[[[1.0, -1.0]]]], np.float32), np.zeros(2)])
    m.get_layer("out").set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    return m


def bright_square(shape, rows, cols):
    x = np.full((1, *shape, 1), 0.05, np.float32)
    x[0, rows, cols] = 1.0
    return x


@pytest.mark.parametrize("plus_plus", [False, True])
def test_cam_of_an_identity_feature_map_is_the_normalised_image(plus_plus):
    m = identity_cam_model()
    x = bright_square((8, 8), slice(1, 4), slice(5, 8))
    x[0, 6, 2] = 0.5
    cam = vizkit.gradcam(m, x, 0, plus_plus=plus_plus)
    assert cam.shape == (1, 8, 8) and cam.dtype == np.float32
    # One product per pixel, divided by the maximum: a few roundings of a value at most 1.
    assert_close_f32(cam[0], x[0, ..., 0] / x.max(), n_terms=2, scale=1.0)
    assert m.get_layer("out").activation is keras.activations.softmax


def test_cam_is_upsampled_to_non_square_inputs_in_height_width_order():
    m = identity_cam_model((8, 12, 1), pool=True)
    x = bright_square((8, 12), slice(0, 4), slice(8, 12))  # top-right block
    cam = vizkit.gradcam(m, x, 0, layer="pool")
    assert cam.shape == (1, 8, 12)
    pooled = x[0, ..., 0].reshape(4, 2, 6, 2).mean(axis=(1, 3))
    expected = tf.image.resize(pooled[None, ..., None], (8, 12), method="bilinear")[0, ..., 0]
    # A 2x2 average, a 4-neighbour interpolation and the division, of values at most 1.
    assert_close_f32(cam[0], expected / np.max(expected), n_terms=4 + 4 + 2, scale=1.0)
    # These pixels interpolate only the bright block's plateau, which is the maximum: 1 up to
    # the rounding of the two-term interpolation.
    assert cam[0, :3, 9:].min() >= 1.0 - 4 * EPS32 and cam[0, 4:, :6].max() < 0.2
    # Default layer is the last convolution, here at input resolution.
    assert_close_f32(vizkit.gradcam(m, x, 0)[0], x[0, ..., 0], n_terms=2, scale=1.0)


def test_class_one_highlights_the_dark_background():
    m = identity_cam_model()
    x = bright_square((8, 8), slice(0, 4), slice(0, 4))
    x[0, 4:, 4:] = -1.0  # channel 1 = relu(-x) fires only here
    cam = vizkit.gradcam(m, x, 1)[0]
    # Exact: one non-zero term per pixel (relu(-x) = 1 times one weight), divided by itself;
    # the rest multiplies an exact 0 activation.
    np.testing.assert_array_equal(cam[4:, 4:], 1.0)
    np.testing.assert_array_equal(cam[:4, :4], 0.0)


def trained_like_conv_model():
    keras.utils.set_random_seed(2)
    inp = keras.Input((12, 10, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.MaxPooling2D(name="p1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(4, activation="softmax", name="out")(h)
    return keras.Model(inp, out)


def test_relu_false_keeps_negative_evidence_and_plus_plus_differs():
    m = trained_like_conv_model()
    x = np.random.default_rng(0).random((3, 12, 10, 3), dtype=np.float32)
    plain = vizkit.gradcam(m, x, [0, 1, 2], relu=False)
    assert plain.shape == (3, 12, 10)
    # Exact: (min - min) / span == 0 and (max - min) / span == span / span == 1.
    np.testing.assert_array_equal(plain.reshape(3, -1).min(axis=1), 0.0)
    np.testing.assert_array_equal(plain.reshape(3, -1).max(axis=1), 1.0)
    pp = vizkit.gradcam(m, x, [0, 1, 2], plus_plus=True)
    assert np.all((pp >= 0) & (pp <= 1))
    assert not np.allclose(pp, vizkit.gradcam(m, x, [0, 1, 2]))


def cam_terms(m):
    """Terms behind a Grad-CAM of "c2" in trained_like_conv_model: the forward and backward
    pass, the 6x5 gradient mean, the 8-channel weighted sum and the 4-neighbour upsampling."""
    return chain_terms(m) + 6 * 5 + 8 + 4


def cam_scale(act, weights, raw):
    """The size of the CAM's sums, sum_k |A_k w_k|, relative to each map's maximum (which the
    normalisation makes 1)."""
    act, weights, raw = (np.asarray(v, np.float64) for v in (act, weights, raw))
    sizes = np.einsum("nhwk,nk->nhw", np.abs(act), np.abs(weights)).max(axis=(1, 2))
    return float(np.max(sizes / raw.reshape(len(raw), -1).max(axis=1)))


def test_grad_cam_equals_a_manual_computation_on_a_nested_layer():
    m = trained_like_conv_model()
    x = np.random.default_rng(1).random((2, 12, 10, 3), dtype=np.float32)
    logits_model = keras.Model(m.inputs, [m.get_layer("c2").output, m.get_layer("gap").output])
    w, b = m.get_layer("out").get_weights()
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        act, pooled = logits_model(xt)
        score = (pooled @ w + b)[:, 3]
    grad = tape.gradient(score, act)
    weights = tf.reduce_mean(grad, (1, 2))
    raw = tf.nn.relu(tf.einsum("nhwk,nk->nhw", act, weights))
    cam = tf.image.resize(raw[..., None], (12, 10))[..., 0].numpy()
    cam /= np.maximum(cam.reshape(2, -1).max(axis=1), 1e-12)[:, None, None]
    got = vizkit.gradcam(m, x, 3, layer="c2")
    assert_close_f32(got, cam, n_terms=cam_terms(m), scale=cam_scale(act, weights, raw))


def test_grad_cam_plus_plus_follows_the_paper_with_exp_score():
    # Chattopadhay et al. (2018), eq. 19 with Y = exp(S): dY = e^S g, d2Y = e^S g^2,
    # d3Y = e^S g^3, computed in float64 without the cancellation vizkit relies on.
    m = trained_like_conv_model()
    x = np.random.default_rng(2).random((2, 12, 10, 3), dtype=np.float32)
    sub = keras.Model(m.inputs, [m.get_layer("c2").output, m.get_layer("gap").output])
    w, b = m.get_layer("out").get_weights()
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        act, pooled = sub(xt)
        score = (pooled @ w + b)[:, 1]
    g = tape.gradient(score, act).numpy().astype(np.float64)
    a = act.numpy().astype(np.float64)
    ey = np.exp(score.numpy().astype(np.float64))[:, None, None, None]
    d1, d2, d3 = ey * g, ey * g**2, ey * g**3
    denom = 2 * d2 + a.sum(axis=(1, 2), keepdims=True) * d3
    alpha = np.divide(d2, denom, out=np.zeros_like(d2), where=denom != 0)
    weights = (alpha * np.maximum(d1, 0)).sum(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwk,nk->nhw", a, weights), 0)
    cam = tf.image.resize(cam[..., None], (12, 10))[..., 0].numpy()
    cam /= cam.reshape(2, -1).max(axis=1)[:, None, None]
    got = vizkit.gradcam(m, x, 1, layer="c2", plus_plus=True)
    # vizkit cancels e^S in float32; the reference keeps it in float64. alpha adds a few
    # roundings per weight (squares, cubes, the division).
    scale = cam_scale(a, weights, np.einsum("nhwk,nk->nhw", a, weights))
    assert_close_f32(got, cam, n_terms=cam_terms(m) + 6 * 5, scale=scale)


def test_layers_inside_a_nested_model():
    inner_in = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inner_in)
    h = keras.layers.Conv2D(5, 3, name="c2")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    inp = keras.Input((8, 8, 3))
    y = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(inp))
    m = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(y))
    x = np.random.default_rng(3).random((2, 8, 8, 3), dtype=np.float32)
    default = vizkit.gradcam(m, x)  # last conv: "backbone/c2"; predicted classes
    np.testing.assert_allclose(default, vizkit.gradcam(m, x, layer="backbone"), atol=1e-6)
    # Exact: each map is divided by its own maximum, and x / x == 1 in IEEE arithmetic.
    assert default.shape == (2, 8, 8) and np.all(default.max(axis=(1, 2)) == 1.0)


def test_non_4d_layer_is_named_with_its_shape():
    m = trained_like_conv_model()
    with pytest.raises(ValueError, match=r"layer 'gap' has output shape \(None, 8\)"):
        vizkit.gradcam(m, np.zeros((1, 12, 10, 3), np.float32), layer="gap")


def test_model_without_4d_layer_is_rejected():
    m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no layer with a 4-D"):
        vizkit.gradcam(m, np.zeros((1, 4, 4, 1), np.float32))
