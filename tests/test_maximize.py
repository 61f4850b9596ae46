"""Activation maximisation: known optima of hand-set models, batch independence, class logits."""

import keras
import numpy as np
import pytest

import vizkit
from vizkit import optimize as opt

PLAIN = {"param": "pixel", "transforms": None}


def edge_kernel() -> np.ndarray:
    """5x5 oriented edge: +1 on one side of a diagonal-ish line, -1 on the other, 0 on it."""
    yy, xx = np.mgrid[-2:3, -2:3]
    return np.sign(2 * xx - yy).astype(np.float32)


def edge_model(channels: int = 1) -> keras.Model:
    """Conv with the edge kernel, stride 5 on 20x20: the channel-mean gradient is the tiled kernel."""
    inp = keras.Input((20, 20, channels))
    conv = keras.layers.Conv2D(2, 5, strides=5, activation="relu", name="edge")
    out = keras.layers.GlobalAveragePooling2D(name="gap")(conv(inp))
    kernel = np.zeros((5, 5, channels, 2), np.float32)
    kernel[..., 0] = edge_kernel()[..., None]
    kernel[..., 1] = -edge_kernel()[..., None]
    # A positive bias keeps every ReLU open from the start.
    conv.set_weights([kernel, np.ones(2, np.float32)])
    return keras.Model(inp, out)


def small_cnn(softmax: bool = True) -> keras.Model:
    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, activation="relu", name="fc")(x)
    out = keras.layers.Dense(4, activation="softmax" if softmax else None, name="pred")(x)
    return keras.Model(inp, out)


def centred_corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_channel_optimum_is_its_kernel_tiled(channels):
    model = edge_model(channels)
    images, history = vizkit.maximize(model, "edge", steps=40, return_history=True, **PLAIN)
    assert images.shape == (2, 20, 20, channels)
    tiled = np.tile(edge_kernel(), (4, 4))
    for unit, sign in enumerate((1, -1)):
        for c in range(channels):
            assert centred_corr(images[unit, ..., c], sign * tiled) > 0.8
    # The objective rises over the steps.
    assert np.all(history[-1] > history[0])
    assert np.mean(np.diff(history, axis=0) > 0) > 0.9


def test_fourier_param_also_finds_the_edge():
    model = edge_model(3)
    images, history = vizkit.maximize(
        model, "edge", units=0, steps=40, transforms=None, return_history=True
    )
    assert images.shape == (1, 20, 20, 3)
    assert history[-1, 0] > 3 * history[0, 0]
    gray = images[0].mean(axis=-1)
    assert centred_corr(gray, np.tile(edge_kernel(), (4, 4))) > 0.3


def test_linear_dense_unit_optimum_is_its_weight_vector():
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten(name="flat")(inp)
    dense = keras.layers.Dense(3, name="dense")
    model = keras.Model(inp, dense(flat))
    weights = dense.get_weights()[0]
    # With an L2 penalty the optimum of w.x - lam * mean((x - 0.5)^2) is x - 0.5 ∝ w, inside the
    # box [0, 1] when lam is large enough.
    lam = float(np.abs(weights).max() * 64 / (2 * 0.2))
    images = vizkit.maximize(
        model, "dense", steps=40, learning_rate=0.1, regularizers=[opt.l2(lam)], **PLAIN
    )
    for unit in range(3):
        delta = images[unit].ravel() - 0.5
        w = weights[:, unit]
        assert delta @ w / (np.linalg.norm(delta) * np.linalg.norm(w)) > 0.9


def test_all_units_at_once_equal_each_unit_alone():
    model = small_cnn()
    together = vizkit.maximize(model, "conv2", steps=20, **PLAIN)
    assert together.shape == (8, 16, 16, 3) and together.dtype == np.float32
    assert together.min() >= 0.0 and together.max() <= 1.0
    for unit in (0, 5):
        alone = vizkit.maximize(model, "conv2", units=[unit], steps=20, **PLAIN)
        np.testing.assert_allclose(alone[0], together[unit], atol=1e-4)
    chunked = vizkit.maximize(model, "conv2", steps=20, batch_size=3, **PLAIN)
    np.testing.assert_allclose(chunked, together, atol=1e-4)


def test_output_class_maximisation_raises_its_logit():
    model = small_cnn(softmax=True)
    logits_model = small_cnn(softmax=False)
    logits_model.set_weights(model.get_weights())
    images, history = vizkit.maximize(model, "pred", steps=40, return_history=True, **PLAIN)
    assert images.shape == (4, 16, 16, 3)
    start = logits_model(np.full((1, 16, 16, 3), 0.5, np.float32)).numpy()[0]
    final = logits_model(images).numpy()
    rise = np.diag(final) - start
    assert np.all(rise > 0.01) and rise.mean() > 0.05
    # The history holds logits, not probabilities (which would all be positive).
    assert history.min() < 0
    np.testing.assert_allclose(history[0], start, atol=1e-3)
    np.testing.assert_allclose(history[-1], np.diag(final), atol=0.02)


def test_same_seed_same_images_and_standard_transforms_run():
    model = small_cnn()
    a = vizkit.maximize(model, "fc", units=[1, 3], steps=10, seed=3)
    b = vizkit.maximize(model, "fc", units=[1, 3], steps=10, seed=3)
    c = vizkit.maximize(model, "fc", units=[1, 3], steps=10, seed=4)
    np.testing.assert_array_equal(a, b)  # exact: the same compiled run with the same seed
    assert not np.allclose(a, c)
    assert a.shape == (2, 16, 16, 3)


def test_diversity_and_regularizers_and_value_range_run():
    model = small_cnn()
    images = vizkit.maximize(
        model,
        "conv1",
        units=[0, 0, 0],
        steps=10,
        diversity=1.0,
        regularizers=[opt.total_variation(0.1), opt.blur(0.1)],
        value_range=(-1.0, 1.0),
        preprocess=lambda x: x * 0.5,
    )
    assert images.shape == (3, 16, 16, 3)
    assert not np.allclose(images[0], images[1])


def test_fully_convolutional_model_needs_a_size():
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, name="c")(inp))
    with pytest.raises(ValueError, match="size"):
        vizkit.maximize(model, "c", steps=5)
    images = vizkit.maximize(model, "c", size=(12, 20), steps=5)
    assert images.shape == (3, 12, 20, 3)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"layer": "nope"}, "unknown layer"),
        ({"layer": "conv2", "units": [8]}, r"valid units are 0\.\.7"),
        ({"layer": "conv2", "units": [-1]}, "valid units"),
        ({"layer": "conv2", "steps": 0}, "steps must be a positive int"),
        ({"layer": "conv2", "param": "wavelet"}, "param must be"),
        ({"layer": "conv2", "transforms": "fancy"}, "transforms must be"),
        ({"layer": "conv2", "size": (8, 8)}, "does not match"),
        ({"layer": "conv2", "value_range": (1, 0)}, "low < high"),
        ({"layer": "conv2", "learning_rate": 0}, "learning_rate"),
        ({"layer": "conv2", "seed": -1}, "seed"),
    ],
)
def test_invalid_arguments_are_named(kwargs, fragment):
    model = small_cnn()
    with pytest.raises(ValueError, match=fragment):
        vizkit.maximize(model, **kwargs)


def test_layer_by_index_and_nested_model():
    inner_in = keras.Input((12, 12, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, name="deep")(inner_in), name="backbone")
    inp = keras.Input((12, 12, 3))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inner(inp)))
    by_path = vizkit.maximize(model, "backbone/deep", steps=5, **PLAIN)
    by_index = vizkit.maximize(model, 1, steps=5, **PLAIN)
    # Exact: both name the same layer, so it is the same compiled run on the same start.
    np.testing.assert_array_equal(by_path, by_index)
    assert by_path.shape == (2, 12, 12, 3)


def test_relu_warmup_wakes_a_unit_that_is_dead_on_grey():
    inp = keras.Input((10, 10, 1))
    conv = keras.layers.Conv2D(1, 5, activation="relu", name="dead")
    model = keras.Model(inp, conv(inp))
    # Negative on a grey image (0.5 * sum < 0) but positive for an edge-like input.
    conv.set_weights([(edge_kernel() - 0.5)[..., None, None], np.zeros(1, np.float32)])
    stuck, h0 = vizkit.maximize(model, "dead", steps=40, warmup=0, return_history=True, **PLAIN)
    # Exact: a ReLU whose input stays negative outputs exactly 0.
    assert np.all(h0 == 0) and stuck.std() < 0.01
    woken, h1 = vizkit.maximize(model, "dead", steps=40, warmup=30, return_history=True, **PLAIN)
    assert h1[-1, 0] > 0.1 and woken.std() > 0.05
