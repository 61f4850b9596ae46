"""vizkit.feature_maps: equal to SciPy correlation and to Keras sub-models, one pass for all."""

import keras
import numpy as np
import pytest
from helpers import (
    RANDOM_NET_SCALE,
    assert_close_f32,
    chain_terms,
    conv_model,
    nested_cnn,
    random_images,
    sequential_cnn,
    small_cnn,
)
from scipy.signal import correlate

from vizkit import feature_maps
from vizkit.core.batches import iter_batches


def scipy_conv(x, kernel, bias):
    """Keras Conv2D ("valid", stride 1) as an independent SciPy cross-correlation."""
    out = []
    for img in x:
        maps = [
            correlate(img, kernel[..., f], mode="valid")[..., 0] + bias[f]
            for f in range(kernel.shape[-1])
        ]
        out.append(np.stack(maps, axis=-1))
    return np.stack(out)


def test_hand_set_conv_equals_scipy_correlation_plus_bias_relu():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    bias = np.array([0.5, -0.5, 0.0, 1.0], np.float32)
    model = conv_model(kernel, bias, activation="relu", input_shape=(9, 7, 2))
    x = rng.random((3, 9, 7, 2), dtype=np.float32)
    maps = feature_maps(model, x)
    assert list(maps) == ["conv"]
    expected = np.maximum(scipy_conv(x, kernel, bias), 0)
    # 3 * 3 * 2 products and the bias; x <= 1, so the sums are at most sum|k| + |b|.
    scale = np.abs(kernel).sum(axis=(0, 1, 2)).max() + np.abs(bias).max()
    assert_close_f32(maps["conv"], expected, n_terms=19, scale=scale)


def submodel_outputs(model, x):
    """Every layer's output via keras.Model(inputs, layer.output), the textbook way."""
    return {
        layer.name: np.asarray(keras.Model(model.inputs[0], layer.output)(x))
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    }


@pytest.mark.parametrize("build", [small_cnn, sequential_cnn])
def test_every_layer_equals_a_keras_submodel(build):
    model = build()
    x = random_images(5)
    maps = feature_maps(model, x, layers="all", batch_size=2)
    assert list(maps) == ["conv1", "pool1", "conv2", "flatten", "dense"]
    for name, expected in submodel_outputs(model, x).items():
        # Batches of 2 and of 5 images: the kernels may add up in another order.
        n_terms = chain_terms(model, name)
        assert_close_f32(
            maps[name], expected, n_terms=n_terms, scale=RANDOM_NET_SCALE, err_msg=name
        )


def test_nested_backbone_layers_are_addressed_by_path():
    model = nested_cnn()
    x = random_images(4)
    maps = feature_maps(model, x)
    assert list(maps) == ["backbone/conv", "backbone/conv_b", "head_conv"]
    backbone = model.get_layer("backbone")
    for name in ("conv", "conv_b"):
        inner = keras.Model(backbone.input, backbone.get_layer(name).output)
        n_terms = chain_terms(model, name)
        got = maps[f"backbone/{name}"]
        assert_close_f32(got, inner(x), n_terms=n_terms, scale=RANDOM_NET_SCALE)
    head = keras.Model(model.inputs[0], model.get_layer("head_conv").output)
    n_terms = chain_terms(model, "head_conv")
    assert_close_f32(maps["head_conv"], head(x), n_terms=n_terms, scale=RANDOM_NET_SCALE)
    everything = feature_maps(model, x, layers="all")
    assert list(everything) == [
        "backbone/conv",
        "backbone/conv_b",
        "head_conv",
        "gap",
        "out",
    ]


def test_layer_selection_model_order_and_determinism():
    model = small_cnn()
    x = (random_images(3) * 255).astype(np.uint8)
    maps = feature_maps(model, x, layers=["conv2", 0])
    assert list(maps) == ["conv1", "conv2"]
    again = feature_maps(model, x, layers=["conv2", 0])
    for key in maps:  # exact: the same compiled call on the same input
        np.testing.assert_array_equal(maps[key], again[key])
    # uint8 input is scaled to [0, 1] (in float32 here, in float64 there: a pixel may differ
    # by one rounding, which the 3x3 convolution sums).
    scaled = feature_maps(model, x / 255.0, layers="conv1")["conv1"]
    assert_close_f32(maps["conv1"], scaled, n_terms=9, scale=RANDOM_NET_SCALE)


def test_preprocess_runs_inside_the_graph():
    kernel = np.ones((1, 1, 1, 1), np.float32)
    model = conv_model(kernel, input_shape=(4, 4, 1))
    x = random_images(2, (4, 4, 1))
    maps = feature_maps(model, x, preprocess=lambda t: 2.0 * t - 1.0)
    assert_close_f32(maps["conv"], 2 * x - 1, n_terms=2, scale=1.0)


def test_errors():
    model = small_cnn()
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        feature_maps(model, random_images(1), layers="nope")
    with pytest.raises(ValueError, match="batch_size"):
        feature_maps(model, random_images(1), batch_size=0)
    flat = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no layer with a 4-D output"):
        feature_maps(flat, np.zeros((1, 4, 4, 1)))


def test_iter_batches_accepts_arrays_and_iterables_of_tuples():
    model = small_cnn()
    x = random_images(7)
    chunks = list(iter_batches(x, model, 3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    from_iter = list(iter_batches(((x[i : i + 4], None) for i in (0, 4)), model, 3))
    np.testing.assert_array_equal(np.concatenate(from_iter), x)
    with pytest.raises(TypeError, match="iterable"):
        list(iter_batches(5, model, 3))


def test_iter_batches_takes_list_items_as_batches():
    model = small_cnn()
    x = random_images(4)
    batches = list(iter_batches([list(x[:2]), x[2:]], model, 8))
    np.testing.assert_array_equal(np.concatenate(batches), x)
