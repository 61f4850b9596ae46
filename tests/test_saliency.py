"""Gradient attribution: known answers on hand-set models, invariants and argument checks."""

import warnings

import keras
import numpy as np
import pytest
from helpers import assert_close_f32, chain_terms, f32_tol

import vizkit
from vizkit.attribution import (
    METHODS,
    deconvnet,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    normalize_map,
    smooth_gradients,
    vanilla_gradients,
)

# Constants from their own fixed seeds (no generator shared between tests).
W_LINEAR = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
B_LINEAR = np.array([0.1, -0.2, 0.3], np.float32)


def linear_model(activation=None):
    m = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation=activation, name="dense"),
        ]
    )
    m.get_layer("dense").set_weights([W_LINEAR, B_LINEAR])
    return m


def quadrant_model(seed=0):
    """Scores depend only on the top-left 4x4 quadrant of an 8x8 image (positive weights)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True
    w1 = np.abs(rng.normal(size=(64, 5))).astype(np.float32) + 0.1
    w1[~mask.ravel()] = 0.0
    m = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    m.get_layer("hidden").set_weights([w1, np.zeros(5, np.float32)])
    w2 = np.abs(rng.normal(size=(5, 2))).astype(np.float32) + 0.1
    m.get_layer("out").set_weights([w2, np.zeros(2, np.float32)])
    return m, mask


def conv_model():
    """Small nonlinear conv net (fixed seed)."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((10, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="random_normal"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(6, 3, activation="tanh", bias_initializer="random_normal"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


X_LINEAR = np.random.default_rng(1).random((3, 4, 4, 1), dtype=np.float32)
TARGETS = [0, 2, 1]


def test_vanilla_equals_the_weight_row_of_the_target_logit():
    m = linear_model("softmax")
    grads = vanilla_gradients(m, X_LINEAR, TARGETS)
    expected = W_LINEAR[:, TARGETS].T.reshape(3, 4, 4, 1)
    # The logit's one-hot gradient through the 3 outputs: one non-zero term per pixel.
    assert_close_f32(grads, expected, n_terms=3)
    maps = vizkit.saliency(m, X_LINEAR, TARGETS)
    assert maps.shape == (3, 4, 4) and maps.dtype == np.float32
    assert_close_f32(maps, np.abs(expected[..., 0]), n_terms=3)


def test_vanilla_on_probabilities_is_the_softmax_gradient():
    m = linear_model("softmax")
    x = X_LINEAR[:1]
    z = x.reshape(1, 16) @ W_LINEAR + B_LINEAR
    prob = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    # d p_t / d x = p_t * (w_t - sum_j p_j w_j)
    expected = prob[0, 1] * (W_LINEAR[:, 1] - W_LINEAR @ prob[0])
    got = vanilla_gradients(m, x, 1, logits=False).reshape(16)
    # Logits of 16 terms (their rounding moves p relatively by as much), the softmax's 3.
    logit_size = float((np.abs(x.reshape(1, 16)) @ np.abs(W_LINEAR)).max() + 1)
    scale = logit_size * np.abs(W_LINEAR).max()
    assert_close_f32(got, expected, n_terms=16 + 3, scale=scale)


def test_gradxinput_is_weight_times_input():
    got = gradient_x_input(linear_model("softmax"), X_LINEAR, TARGETS)
    expected = X_LINEAR * W_LINEAR[:, TARGETS].T.reshape(3, 4, 4, 1)
    assert_close_f32(got, expected, n_terms=3 + 1)


@pytest.mark.parametrize("rule", ["trapezoid", "gauss_legendre"])
def test_integrated_gradients_on_a_linear_model_are_exact(rule):
    m = linear_model()
    baseline = np.full((4, 4, 1), 0.25, np.float32)
    res = integrated_gradients(m, X_LINEAR, TARGETS, baseline=baseline, steps=7, rule=rule)
    expected = (X_LINEAR - baseline) * W_LINEAR[:, TARGETS].T.reshape(3, 4, 4, 1)
    # The same gradient at each of the 7 points, averaged with weights summing to one.
    assert_close_f32(res.attributions, expected, n_terms=3 + 7 + 1)
    # delta is f(x) - f(baseline): two logits of 16 terms and a bias.
    size = np.abs(X_LINEAR.reshape(3, 16)) @ np.abs(W_LINEAR) + 0.25 * np.abs(W_LINEAR).sum(0)
    scale = float(size.max() + np.abs(B_LINEAR).max())
    assert_close_f32(res.delta, expected.reshape(3, -1).sum(axis=1), n_terms=17, scale=scale)
    assert np.all(res.completeness_error < 1e-4)


def test_integrated_gradients_completeness_on_a_nonlinear_conv_model():
    m = conv_model()
    x = np.random.default_rng(2).random((2, 10, 12, 1), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = integrated_gradients(m, x, steps=50, batch_size=40)
    assert np.all(np.abs(res.delta) > 1e-3)
    sums = res.attributions.reshape(2, -1).sum(axis=1)
    np.testing.assert_allclose(sums, res.delta, rtol=0.01)
    assert np.all(res.completeness_error < 0.01)
    # The softmax probability is far from linear along the path, still complete.
    blur = integrated_gradients(m, x, 0, baseline="blur", steps=50, logits=False)
    assert np.all(blur.completeness_error < 0.01)


def test_too_few_integration_steps_warn_about_completeness():
    m = conv_model()
    x = np.random.default_rng(3).random((1, 10, 12, 1), dtype=np.float32) * 4
    with pytest.warns(RuntimeWarning, match="completeness error"):
        vizkit.saliency(m, x, 0, method="integrated", steps=2, rule="trapezoid", logits=False)


def test_smoothgrad_on_a_linear_model_equals_vanilla():
    m = linear_model("softmax")
    smooth = smooth_gradients(m, X_LINEAR, TARGETS, samples=10, noise=0.3, batch_size=4)
    # The same gradient for every noisy copy, averaged over the 10 samples.
    assert_close_f32(smooth, vanilla_gradients(m, X_LINEAR, TARGETS), n_terms=3 + 10)


def test_smoothgrad_is_deterministic_for_a_seed_and_noisy_otherwise():
    m = conv_model()
    x = np.random.default_rng(4).random((2, 10, 12, 1), dtype=np.float32)
    a = vizkit.saliency(m, x, method="smoothgrad", samples=12, seed=3, batch_size=8)
    b = vizkit.saliency(m, x, method="smoothgrad", samples=12, seed=3, batch_size=8)
    c = vizkit.saliency(m, x, method="smoothgrad", samples=12, seed=4, batch_size=8)
    np.testing.assert_array_equal(a, b)  # exact: the same compiled calls on the same input
    assert not np.allclose(a, c)
    # noise=0 is the vanilla gradient, however the copies are chunked.
    flat = vizkit.saliency(m, x, method="smoothgrad", samples=5, noise=0.0, batch_size=3)
    # Other batch shapes than the vanilla call: the kernels may add up in another order.
    assert_close_f32(flat, vizkit.saliency(m, x), n_terms=chain_terms(m) + 5)


def test_smoothgrad_squared_is_mean_of_squares():
    m = linear_model()
    sq = smooth_gradients(m, X_LINEAR, TARGETS, samples=4, squared=True)
    assert_close_f32(sq, vanilla_gradients(m, X_LINEAR, TARGETS) ** 2, n_terms=2 * 3 + 4)


def _options(method, **opts):
    """The subset of ``opts`` that ``method`` accepts."""
    keep = {"smoothgrad": ("samples",), "integrated": ("steps",)}.get(method, ())
    return {k: v for k, v in opts.items() if k in keep}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_sees_only_the_quadrant_the_model_uses(method):
    m, mask = quadrant_model()
    x = np.random.default_rng(5).random((2, 8, 8, 1), dtype=np.float32) + 0.1
    opts = _options(method, samples=8, steps=8)
    maps = vizkit.saliency(m, x, [0, 1], method=method, **opts)
    assert maps.shape == (2, 8, 8) and maps.dtype == np.float32
    # Exact: the weights of these pixels are exactly zero, so every term of their gradient is
    # zero and so is any sum of them, whatever its order.
    np.testing.assert_array_equal(maps[:, ~mask], 0.0)
    assert np.all(maps[:, mask] > 0)


def test_guided_backprop_and_deconvnet_by_hand():
    # x (4 pixels) -> relu(W1^T x + b1) (3 units) -> W2 (3 -> 2); target 0.
    w1 = np.array([[1, -1, 2], [0.5, 1, -1], [-1, 2, 1], [2, 0.5, -0.5]], np.float32)
    b1 = np.array([0.0, -0.5, 0.2], np.float32)
    # Unit 1 is off with a positive incoming gradient (only deconvnet passes it); unit 2 is on
    # with a negative one (guided backprop blocks it).
    w2 = np.array([[1.0, 0.0], [0.5, 1.0], [-2.0, 1.0]], np.float32)
    m = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="relu", name="h"),
            keras.layers.Dense(2, name="o"),
        ]
    )
    m.get_layer("h").set_weights([w1, b1])
    m.get_layer("o").set_weights([w2, np.zeros(2, np.float32)])
    x = np.array([1.0, 0.5, 0.25, 0.1], np.float32)
    active = (x @ w1 + b1) > 0
    incoming = w2[:, 0]
    assert active.tolist() == [True, False, True]
    expected = {
        "vanilla": w1 @ (incoming * active),
        "guided": w1 @ (incoming * active * (incoming > 0)),
        "deconv": w1 @ np.maximum(incoming, 0),
    }
    img = x.reshape(1, 2, 2, 1)
    got = {
        "vanilla": vanilla_gradients(m, img, 0),
        "guided": guided_backprop(m, img, 0),
        "deconv": deconvnet(m, img, 0),
    }
    scale = float((np.abs(w1) @ np.abs(w2[:, 0])).max())
    for name, value in got.items():
        assert_close_f32(value.reshape(4), expected[name], n_terms=3, scale=scale, err_msg=name)
    assert not np.allclose(expected["vanilla"], expected["guided"])
    assert not np.allclose(expected["guided"], expected["deconv"])
    # The user's model keeps its own ReLU and answers as before.
    assert m.get_layer("h").activation is keras.activations.relu


def test_target_none_uses_the_predicted_class():
    m = linear_model("softmax")
    pred = m.predict(X_LINEAR, verbose=0).argmax(axis=1)
    assert_close_f32(
        vizkit.saliency(m, X_LINEAR), vizkit.saliency(m, X_LINEAR, pred.tolist()), n_terms=3
    )


def test_preprocess_runs_inside_the_graph():
    m = linear_model("softmax")
    got = vanilla_gradients(m, X_LINEAR, TARGETS, preprocess=lambda x: 2.0 * x - 1.0)
    assert_close_f32(got, 2.0 * vanilla_gradients(m, X_LINEAR, TARGETS), n_terms=3 + 1)


def test_uint8_images_and_one_image_are_accepted():
    m = linear_model()
    img = (X_LINEAR[0] * 255).astype(np.uint8)
    maps = vizkit.saliency(m, img, 1, method="gradxinput", reduce="sum")
    expected = img[..., 0] / 255.0 * W_LINEAR[:, 1].reshape(4, 4)
    assert_close_f32(maps[0], expected, n_terms=3 + 2, scale=np.abs(W_LINEAR).max())


def test_reduce_options_on_rgb_images():
    m = keras.Sequential([keras.Input((3, 3, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    x = np.random.default_rng(6).random((1, 3, 3, 3), dtype=np.float32)
    raw = vizkit.saliency(m, x, 0, reduce="none")
    assert raw.shape == (1, 3, 3, 3)
    # The same compiled gradient each time: a maximum is exact, a mean of 3 rounds.
    np.testing.assert_array_equal(vizkit.saliency(m, x, 0), np.abs(raw).max(-1))
    assert_close_f32(vizkit.saliency(m, x, 0, reduce="abs_mean"), np.abs(raw).mean(-1), n_terms=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"target": 3}, ValueError, "target 3 is out of range.*3 output classes"),
        ({"target": -1}, ValueError, "out of range"),
        ({"target": [0, 1]}, ValueError, "one class per image: got 2 targets"),
        ({"target": 1.5}, TypeError, "class index"),
        ({"method": "lrp"}, ValueError, "method must be one of"),
        ({"reduce": "max"}, ValueError, "reduce must be one of"),
        ({"method": "vanilla", "samples": 3}, TypeError, "unexpected options \\['samples'\\]"),
        ({"method": "smoothgrad", "samples": 0}, ValueError, "samples must be a positive int"),
        ({"method": "smoothgrad", "noise": -0.1}, ValueError, "noise must be a float >= 0"),
        ({"method": "integrated", "steps": 1, "rule": "trapezoid"}, ValueError, "steps"),
        ({"method": "integrated", "rule": "simpson"}, ValueError, "rule must be one of"),
        ({"method": "integrated", "baseline": "white"}, ValueError, "baseline must be"),
        ({"method": "integrated", "baseline": np.zeros(5)}, ValueError, "cannot be broadcast"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        vizkit.saliency(linear_model(), X_LINEAR, **kwargs)


def test_normalize_map_absolute_and_signed():
    maps = np.array([[[-4.0, 0.0], [2.0, 1.0]]], np.float32)
    np.testing.assert_allclose(
        normalize_map(maps, channels=None, clip_percentile=None), [[[1, 0], [0.5, 0.25]]]
    )
    signed = normalize_map(maps, channels=None, absolute=False, clip_percentile=None)
    np.testing.assert_allclose(signed, [[[0, 0.5], [0.75, 0.625]]])
    # Percentile clipping: one outlier no longer sets the scale.
    spiky = np.ones((1, 10, 10), np.float32)
    spiky[0, 0, 0] = 1000.0
    out = normalize_map(spiky, channels=None, clip_percentile=95)
    assert out.max() == 1.0 and out[0, 5, 5] == 1.0
    rgb = np.zeros((4, 4, 3), np.float32)
    rgb[1, 2] = [0.0, -3.0, 1.0]
    one = normalize_map(rgb)
    assert one.shape == (4, 4) and one[1, 2] == 1.0 and one.sum() == 1.0
    with pytest.raises(ValueError, match="clip_percentile"):
        normalize_map(maps, channels=None, clip_percentile=0)


def test_model_is_not_mutated_and_functions_are_reused():
    m = linear_model("softmax")
    before = m.predict(X_LINEAR, verbose=0)
    for method in METHODS:
        vizkit.saliency(m, X_LINEAR, method=method, **_options(method, samples=3, steps=3))
    tol = f32_tol(16 + 3, 1.0)  # probabilities of 16-term logits
    np.testing.assert_allclose(m.predict(X_LINEAR, verbose=0), before, rtol=0, atol=tol)
    assert m.get_layer("dense").activation is keras.activations.softmax
