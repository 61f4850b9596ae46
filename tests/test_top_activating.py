"""vizkit.top_activating: finds a planted image, matches brute force, streams exactly."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    RANDOM_NET_SCALE,
    assert_close_f32,
    chain_terms,
    conv_model,
    f32_tol,
    nested_cnn,
    random_images,
    sequential_cnn,
)
from scipy.signal import correlate

from vizkit import top_activating
from vizkit.methods.top_activating import TopCrops, receptive_field

PATTERN = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)


def cross_model():
    """Unit 1 is a matched filter for PATTERN (zero-mean, so flat bright areas don't win)."""
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0] = 1.0
    kernel[..., 0, 1] = PATTERN - PATTERN.mean()
    return conv_model(kernel, activation="relu", input_shape=(10, 10, 1))


def dataset(n=40, plant_at=23, where=(4, 5)):
    rng = np.random.default_rng(0)
    x = rng.random((n, 10, 10, 1), dtype=np.float32) * 0.5
    r, c = where
    x[plant_at] = 0.0
    x[plant_at, r : r + 3, c : c + 3, 0] = PATTERN
    return x


def brute_force(x, unit, reduce=np.max):
    kernel = cross_model().get_layer("conv").get_weights()[0][..., 0, unit]
    maps = np.stack([np.maximum(correlate(img[..., 0], kernel, mode="valid"), 0) for img in x])
    return reduce(maps.reshape(len(x), -1), axis=1), maps


# Unit 1 of cross_model sums 9 products of weights |PATTERN - 5/9| and pixels of at most 1.
SCORE_SIZE = float(np.abs(PATTERN - PATTERN.mean()).sum())


def test_finds_the_planted_image_and_matches_brute_force_order():
    x = dataset()
    indices, scores = top_activating(cross_model(), "conv", 1, x, k=6)
    assert indices[0] == 23
    expected_scores, _ = brute_force(x, 1)
    order = np.argsort(-expected_scores, kind="stable")[:6]
    np.testing.assert_array_equal(indices, order)
    assert_close_f32(scores, expected_scores[order], n_terms=9, scale=SCORE_SIZE)
    assert indices.dtype == np.int64 and scores.dtype == np.float32


def test_mean_reduction_matches_brute_force():
    x = dataset()
    indices, scores = top_activating(cross_model(), 0, 0, x, k=4, reduce="mean")
    expected, _ = brute_force(x, 0, np.mean)
    order = np.argsort(-expected, kind="stable")[:4]
    np.testing.assert_array_equal(indices, order)
    # Unit 0 sums 9 pixels (weights 1), then the 8 x 8 map is averaged.
    assert_close_f32(scores, expected[order], n_terms=9 + 64, scale=9.0)


def test_streaming_equals_all_at_once():
    x = dataset(n=50)
    model = cross_model()
    whole = top_activating(model, "conv", 1, x, k=7, batch_size=64)
    small = top_activating(model, "conv", 1, x, k=7, batch_size=3)
    stream = top_activating(model, "conv", 1, (x[i : i + 8] for i in range(0, 50, 8)), k=7)
    tuples = top_activating(
        model, "conv", 1, ((x[i : i + 16], None) for i in range(0, 50, 16)), k=7
    )
    # Batches of 64, 3, 8 and 16 images are different shapes, whose kernels may add up the 9
    # terms of the 3x3 convolution in another order: indices exactly, scores to rounding.
    for other in (small, stream, tuples):
        np.testing.assert_array_equal(whole[0], other[0])
        assert_close_f32(other[1], whole[1], n_terms=9, scale=SCORE_SIZE)


def test_ties_prefer_the_lower_index_whatever_the_batching():
    x = np.zeros((10, 10, 10, 1), np.float32)
    for i in (2, 5, 8):
        x[i, 1:4, 1:4, 0] = PATTERN
    model = cross_model()
    for batch_size in (1, 4, 10):
        # Unit 0 sums the 0/1 pixels with weights 1: small integers, exact in any order, so
        # the three scores are true ties on every CPU and in every batch shape.
        indices, scores = top_activating(model, "conv", 0, x, k=2, batch_size=batch_size)
        np.testing.assert_array_equal(scores, [5.0, 5.0])
        np.testing.assert_array_equal(indices, [2, 5])


def test_crops_are_the_receptive_field_around_the_argmax():
    x = dataset(where=(6, 2))
    indices, scores, crops = top_activating(cross_model(), "conv", 1, x, k=3, crops=True)
    assert isinstance(crops, TopCrops)
    # Exact: locations and boxes are integers, crops are copies of the input pixels.
    assert crops.images.shape == (3, 3, 3, 1)
    np.testing.assert_array_equal(crops.locations[0], [6, 2])
    np.testing.assert_array_equal(crops.boxes[0], [6, 2, 9, 5])
    np.testing.assert_array_equal(crops.images[0, ..., 0], PATTERN)
    _, maps = brute_force(x, 1)
    for j, i in enumerate(indices):
        r, c = crops.locations[j]
        assert abs(maps[i, r, c] - scores[j]) <= f32_tol(9, SCORE_SIZE)
        t, lft, b, rt = crops.boxes[j]
        np.testing.assert_array_equal(crops.images[j], x[i, t:b, lft:rt])


def chain_model():
    inp = keras.Input((20, 20, 1))
    h = keras.layers.Conv2D(2, 3, name="c1")(inp)
    h = keras.layers.AveragePooling2D(2, name="p1")(h)
    h = keras.layers.Conv2D(2, 3, padding="same", name="c2")(h)
    h = keras.layers.Conv2D(1, 3, strides=2, dilation_rate=1, name="c3")(h)
    return keras.Model(inp, h)


def gradient_support(model, path_layer, row, col, shape):
    """Bounding box of the input pixels that reach unit (row, col): an empirical field."""
    sub = keras.Model(model.inputs[0], path_layer.output)
    x = tf.constant(np.random.default_rng(0).random((1, *shape), dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = sub(x)[0, row, col, 0]
    g = np.abs(tape.gradient(y, x).numpy()[0, ..., 0]) > 0
    rows, cols = np.flatnonzero(g.any(1)), np.flatnonzero(g.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def positive_weights(model):
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.full_like(w, 0.1) for w in layer.get_weights()])


@pytest.mark.parametrize(
    ("path", "size", "jump"), [("c1", 3, 1), ("p1", 4, 2), ("c2", 8, 2), ("c3", 12, 4)]
)
def test_receptive_field_matches_gradient_support(path, size, jump):
    model = chain_model()
    positive_weights(model)
    field = receptive_field(model, path)
    assert field.size == (size, size) and field.jump == (jump, jump)
    layer = model.get_layer(path)
    for row, col in [(0, 0), (1, 2)]:
        top, left, bottom, right = field.box(row, col)
        clipped = (max(top, 0), max(left, 0), min(bottom, 20), min(right, 20))
        assert gradient_support(model, layer, row, col, (20, 20, 1)) == clipped


def test_receptive_field_through_a_nested_backbone():
    model = nested_cnn()
    field = receptive_field(model, "head_conv")
    assert field.size == (5, 5) and field.jump == (2, 2)
    assert receptive_field(model, "backbone/conv").size == (3, 3)
    assert receptive_field(model, "backbone/conv_b").size == (5, 5)
    assert field.box(1, 1) == (2, 2, 7, 7)


def test_errors():
    model = cross_model()
    x = dataset()
    with pytest.raises(ValueError, match="unit 2 is out of range"):
        top_activating(model, "conv", 2, x)
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_activating(model, "conv", 0, x, k=0)
    with pytest.raises(ValueError, match="reduce must be one of"):
        top_activating(model, "conv", 0, x, reduce="median")
    with pytest.raises(ValueError, match="empty"):
        top_activating(model, "conv", 0, iter([]))


def test_receptive_field_of_a_sequential_model_and_crop_errors():
    model = sequential_cnn()
    assert receptive_field(model, "conv2").size == (8, 8)  # 3, pool 2 -> 4, same 3 at jump 2 -> 8
    assert receptive_field(model, "conv2").jump == (2, 2)
    x = random_images(3)
    with pytest.raises(ValueError, match="crops=True needs a layer with a spatial output"):
        top_activating(model, "dense", 0, x, crops=True)
    indices, scores = top_activating(model, "dense", 2, x, k=2)
    probs = np.asarray(model(x))[:, 2]
    np.testing.assert_array_equal(indices, np.argsort(-probs)[:2])
    n_terms = chain_terms(model) + 3  # and the softmax
    assert_close_f32(scores, probs[indices], n_terms=n_terms, scale=RANDOM_NET_SCALE)


class SameConv(keras.layers.Layer):
    """A custom 3x3 "same" convolution with ``kernel_size`` but no strides/padding attributes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = 3

    def build(self, input_shape):
        self.k = self.add_weight(shape=(3, 3, input_shape[-1], 1), initializer="ones")

    def call(self, x):
        return keras.ops.conv(x, self.k, padding="same")


def test_custom_layers_default_to_stride_one_and_shape_inferred_padding():
    inp = keras.Input((10, 10, 1))
    model = keras.Model(inp, SameConv(name="s2")(SameConv(name="s1")(inp)))
    field = receptive_field(model, "s2")
    assert field.size == (5, 5) and field.jump == (1, 1)
    assert field.box(0, 0) == (-2, -2, 3, 3)
    assert gradient_support(model, model.get_layer("s2"), 4, 6, (10, 10, 1)) == field.box(4, 6)


def test_crops_of_fields_larger_than_the_image_are_the_whole_image():
    inp = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(1, 5, name="a")(inp)
    model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", name="b")(h))
    assert receptive_field(model, "b").size == (7, 7)
    x = random_images(4, (6, 6, 1))
    indices, _, crops = top_activating(model, "b", 0, x, k=2, crops=True)
    np.testing.assert_array_equal(crops.images, x[indices])
    np.testing.assert_array_equal(crops.boxes, [[0, 0, 6, 6]] * 2)
