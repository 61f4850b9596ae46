"""Shared plumbing: layer lookup, image batches, intercepted compiled passes, chunking."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import RANDOM_NET_SCALE, assert_close_f32, chain_terms

from vizkit.core.graph import (
    ClassScore,
    Tap,
    UnitScore,
    activations_fn,
    check_batch_size,
    default_batch_size,
    final_activation,
    gradient_fn,
    map_batches,
    predict_fn,
)
from vizkit.core.images import to_batch
from vizkit.core.layers import conv_layer_paths, last_conv_layer, layer_paths, resolve_layer


def nested_model():
    inner_in = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inner_in)
    h = keras.layers.Conv2D(5, 3, name="c2")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    inp = keras.Input((8, 8, 3))
    y = backbone(inp)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    y = keras.layers.Dense(3, activation="softmax", name="out")(y)
    return keras.Model(inp, y, name="outer")


def test_layer_paths_flatten_nested_models():
    m = nested_model()
    assert layer_paths(m) == ["backbone", "backbone/c1", "backbone/c2", "gap", "out"]
    assert conv_layer_paths(m) == ["backbone/c1", "backbone/c2"]
    assert last_conv_layer(m) == "backbone/c2"


def test_resolve_layer_by_path_name_index_and_object():
    m = nested_model()
    assert resolve_layer(m, "backbone/c2")[0] == "backbone/c2"
    assert resolve_layer(m, "c2")[0] == "backbone/c2"
    assert resolve_layer(m, -1)[0] == "out"
    assert resolve_layer(m, 1)[0] == "backbone/c1"
    assert resolve_layer(m, m.get_layer("gap"))[0] == "gap"


@pytest.mark.parametrize(
    ("spec", "error", "fragment"),
    [
        ("nope", ValueError, "available layers: 0: backbone"),
        (99, ValueError, "out of range"),
        (1.5, TypeError, "float"),
    ],
)
def test_resolve_layer_errors_name_the_problem(spec, error, fragment):
    with pytest.raises(error, match=fragment):
        resolve_layer(nested_model(), spec)


def test_to_batch_conversions():
    m = nested_model()
    one = np.full((8, 8, 3), 255, np.uint8)
    assert to_batch(one, m).shape == (1, 8, 8, 3)
    np.testing.assert_array_equal(to_batch(one, m), 1.0)  # exact: 255 / 255
    gray = np.random.default_rng(0).random((2, 8, 8), dtype=np.float32)
    rgb = to_batch(gray, m)
    assert rgb.shape == (2, 8, 8, 3)  # grey copied into every channel: exact
    np.testing.assert_array_equal(rgb[..., 0], gray)
    np.testing.assert_array_equal(rgb[..., 2], gray)


def test_to_batch_rgb_to_gray_uses_luminance():
    m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()])
    x = np.zeros((1, 4, 4, 3), np.float32)
    x[..., 1] = 1.0
    assert_close_f32(to_batch(x, m), 0.587, n_terms=3, scale=1.0)


@pytest.mark.parametrize(
    ("images", "fragment"),
    [
        (np.zeros((8,)), "must have shape"),
        (np.zeros((0, 8, 8, 3)), "empty batch"),
        (np.full((8, 8, 3), np.nan), "NaN"),
        (np.zeros((1, 9, 8, 3)), "height 9"),
        (np.zeros((1, 8, 8, 2)), "2 channels"),
        (np.array([["a"]]), "numeric"),
    ],
)
def test_to_batch_rejects_bad_images(images, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        to_batch(images, nested_model())


def test_capture_matches_submodels_for_nested_layers():
    m = nested_model()
    x = np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    tap = Tap(capture=("backbone/c1", "backbone/c2", "gap"))
    acts = map_batches(activations_fn(m, tap, x), [x], batch_size=2)
    backbone = m.get_layer("backbone")
    # Chunks of 2 against one batch of 5: the kernels may add up in another order.
    for name in ("c1", "c2"):
        ref = keras.Model(backbone.input, backbone.get_layer(name).output)(x)
        n_terms = chain_terms(m, name)
        assert_close_f32(acts[f"backbone/{name}"], ref, n_terms=n_terms, scale=RANDOM_NET_SCALE)
    ref_gap = keras.Model(m.inputs, m.get_layer("gap").output)(x)
    n_terms = chain_terms(m, "c2") + 4 * 4  # and the average of the 4x4 map
    assert_close_f32(acts["gap"], ref_gap, n_terms=n_terms, scale=RANDOM_NET_SCALE)


def test_logits_bypass_softmax_without_mutating_the_model():
    m = nested_model()
    x = np.random.default_rng(1).random((3, 8, 8, 3), dtype=np.float32)
    logits = predict_fn(m, Tap(logits=True), x)(x).numpy()
    n_terms = chain_terms(m) + 4 * 4 + 3  # the convolutions, the average, the softmax
    assert_close_f32(tf.nn.softmax(logits), m(x), n_terms=n_terms, scale=RANDOM_NET_SCALE)
    assert final_activation(m) == "softmax"
    assert m.get_layer("out").activation is keras.activations.softmax
    assert "call" not in vars(m.get_layer("backbone").get_layer("c1"))


def test_softmax_layer_at_the_end_is_bypassed_too():
    m = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="d"), keras.layers.Softmax()]
    )
    x = np.random.default_rng(2).random((2, 4), dtype=np.float32)
    got = predict_fn(m, Tap(logits=True), x)(x).numpy()
    assert_close_f32(got, m.get_layer("d")(x), n_terms=4 + 1, scale=RANDOM_NET_SCALE)


def test_class_gradient_equals_analytic_gradient_of_linear_logits():
    m = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    w = np.arange(8, dtype=np.float32).reshape(4, 2)
    m.layers[-1].set_weights([w, np.zeros(2, np.float32)])
    x = np.random.default_rng(3).random((3, 2, 2, 1), dtype=np.float32)
    aux = np.array([0, 1, 1], np.int32)
    score, grad = map_batches(
        gradient_fn(m, ClassScore(), Tap(logits=True), x), [x, aux], batch_size=2
    )
    # The one-hot gradient picks one weight per pixel: small integers, exact.
    np.testing.assert_array_equal(grad.reshape(3, 4), w[:, aux].T)
    expected = np.einsum("ni,in->n", x.reshape(3, 4), w[:, aux])
    assert_close_f32(score, expected, n_terms=4, scale=float(np.abs(w).sum(axis=0).max()))


def test_unit_score_is_mean_channel_activation():
    m = nested_model()
    x = np.random.default_rng(4).random((2, 8, 8, 3), dtype=np.float32)
    aux = np.array([1, 3], np.int32)
    score, _ = gradient_fn(m, UnitScore("backbone/c2"), Tap(capture=("backbone/c2",)), x)(x, aux)
    ref = keras.Model(
        m.get_layer("backbone").input, m.get_layer("backbone").get_layer("c2").output
    )(x).numpy()
    n_terms = chain_terms(m, "c2") + 4 * 4  # and the mean over the 4x4 map
    expected = [ref[0, ..., 1].mean(), ref[1, ..., 3].mean()]
    assert_close_f32(score, expected, n_terms=n_terms, scale=RANDOM_NET_SCALE)


def test_guided_and_deconv_relu_gradient_rules():
    # y = sum(v * relu(x)); d y / d x = v * (x > 0) normally.
    m = keras.Sequential(
        [keras.Input((4,)), keras.layers.ReLU(name="r"), keras.layers.Dense(1, use_bias=False)]
    )
    v = np.array([[1.0], [-1.0], [2.0], [-3.0]], np.float32)
    m.layers[-1].set_weights([v])
    x = np.array([[1.0, 1.0, -1.0, -1.0]], np.float32)
    aux = np.zeros(1, np.int32)
    grads = {
        mode: gradient_fn(m, ClassScore(), Tap(relu=mode), x)(x, aux)[1].numpy()[0]
        for mode in ("normal", "guided", "deconv")
    }
    # Exact: each gradient is one product of small integers (v times a 0/1 ReLU mask).
    np.testing.assert_array_equal(grads["normal"], [1, -1, 0, 0])
    np.testing.assert_array_equal(grads["guided"], [1, 0, 0, 0])
    np.testing.assert_array_equal(grads["deconv"], [1, 0, 2, 0])


def test_compiled_functions_are_cached_and_do_not_retrace():
    m = nested_model()
    tap = Tap(capture=("gap",))
    for n in (1, 3, 7):
        x = np.zeros((n, 8, 8, 3), np.float32)
        fn = activations_fn(m, tap, x)
        fn(x)
    assert fn is activations_fn(m, Tap(capture=("gap",)), x)
    assert fn.experimental_get_tracing_count() == 1


def test_chunked_results_equal_one_batch():
    m = nested_model()
    x = np.random.default_rng(5).random((7, 8, 8, 3), dtype=np.float32)
    fn = predict_fn(m, Tap(), x)
    # Chunks of 3 against one batch of 7: the kernels may add up in another order.
    n_terms = chain_terms(m) + 4 * 4 + 3
    assert_close_f32(
        map_batches(fn, [x], batch_size=3), fn(x), n_terms=n_terms, scale=RANDOM_NET_SCALE
    )


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_batch_size_validation(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        check_batch_size(bad)


@pytest.mark.parametrize(
    "shape, size",
    [
        ((1, 28, 28, 1), 128),
        ((1, 56, 56, 3), 128),
        ((1, 80, 80, 3), 62),
        ((1, 112, 112, 3), 32),
        ((1, 224, 224, 3), 32),
    ],
)
def test_default_batch_size_carries_a_similar_pixel_count_per_call(shape, size):
    example = np.zeros(shape, np.float32)
    assert default_batch_size(example) == size
    assert check_batch_size(None, example) == size
    assert check_batch_size(7, example) == 7


def test_tap_rejects_unknown_relu_mode():
    with pytest.raises(ValueError, match="relu must be one of"):
        Tap(relu="leaky")


def test_prefetched_keeps_order_raises_at_the_failing_item_and_stops_early():
    from vizkit.core.batches import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))
    assert list(prefetched([])) == []

    def failing():
        yield 1
        yield 2
        raise KeyError("third")

    got = []
    with pytest.raises(KeyError, match="third"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def counting():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetched(counting(), depth=2):
        if item == 3:
            break
    # the producer stops within a few items of the consumer, not at the end of the input
    assert len(produced) <= 3 + 1 + 2 + 1
