"""vizkit.hypercolumns: upsampled stacks equal an independent NumPy + OpenCV computation."""

import cv2
import keras
import numpy as np
import pytest
from helpers import assert_close_f32, random_images

from vizkit import hypercolumns
from vizkit.methods.hypercolumns import hypercolumn_average

W1 = np.array([[1.0, -1.0, 0.5]], np.float32)  # 1x1 conv, 1 -> 3 channels
B1 = np.array([0.0, 0.5, -0.25], np.float32)
W2 = np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 0.5]], np.float32)  # 1x1 conv, 3 -> 2


def pixel_model():
    """conv1x1 (relu) -> 2x2 max pool -> conv1x1 (linear) -> global average -> dense."""
    inp = keras.Input((8, 8, 1))
    c1 = keras.layers.Conv2D(3, 1, activation="relu", name="c1")
    pool = keras.layers.MaxPooling2D(2, name="pool")
    c2 = keras.layers.Conv2D(2, 1, name="c2")
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    out = keras.layers.Dense(2, name="fc")
    model = keras.Model(inp, out(gap(c2(pool(c1(inp))))))
    c1.set_weights([W1[None, None], B1])
    c2.set_weights([W2[None, None], np.zeros(2, np.float32)])
    return model


def independent_maps(x):
    """The same layers in plain NumPy."""
    a1 = np.maximum(x @ W1 + B1, 0)  # (N, 8, 8, 3)
    n, h, w, c = a1.shape
    pooled = a1.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return a1, pooled, pooled @ W2


def upsample(maps, size):
    """cv2.resize, bilinear with half-pixel centres, channel by channel."""
    return np.stack(
        [
            np.stack(
                [
                    cv2.resize(m[..., k], size[::-1], interpolation=cv2.INTER_LINEAR)
                    for k in range(m.shape[-1])
                ],
                axis=-1,
            )
            for m in maps
        ]
    )


def sizes(x):
    """sum|terms| of each layer's sums (the scale of f32_tol): |x| |W1| + |B1|, then |W2|."""
    a1 = np.abs(x) @ np.abs(W1) + np.abs(B1)
    return float(a1.max()), float((a1 @ np.abs(W2)).max())


# Terms summed: c1 one input and its bias, c2 three inputs, bilinear upsampling four
# neighbours (and both sides round).
C1_TERMS, C2_TERMS = 2 + 4, 2 + 3 + 4


def test_values_equal_upsampled_independent_activations():
    model = pixel_model()
    x = random_images(3, (8, 8, 1))
    hc = hypercolumns(model, x, ["c1", "pool", "c2"])
    # None: every 4-D layer. Exact: the same layers make the same compiled call.
    np.testing.assert_array_equal(hypercolumns(model, x, None), hc)
    a1, pooled, a2 = independent_maps(x)
    assert hc.shape == (3, 8, 8, 3 + 3 + 2)
    s1, s2 = sizes(x)
    assert_close_f32(hc[..., :3], a1, n_terms=C1_TERMS, scale=s1)
    assert_close_f32(hc[..., 3:6], upsample(pooled, (8, 8)), n_terms=C1_TERMS, scale=s1)
    assert_close_f32(hc[..., 6:], upsample(a2, (8, 8)), n_terms=C2_TERMS, scale=s2)


def test_size_average_dense_and_determinism():
    model = pixel_model()
    x = random_images(2, (8, 8, 1))
    hc = hypercolumns(model, x, ["pool", "c2"], size=(12, 10), batch_size=1)
    _, pooled, a2 = independent_maps(x)
    expected = np.concatenate([upsample(pooled, (12, 10)), upsample(a2, (12, 10))], axis=-1)
    s1, s2 = sizes(x)
    assert_close_f32(hc, expected, n_terms=C2_TERMS, scale=max(s1, s2))
    avg = hypercolumn_average(model, x, ["pool", "c2"], (12, 10))
    assert_close_f32(avg, expected.mean(-1), n_terms=C2_TERMS + 5, scale=max(s1, s2))
    np.testing.assert_array_equal(  # exact: hypercolumn_average is this very call
        hypercolumns(model, x, ["pool", "c2"], size=(12, 10), average=True), avg
    )
    # A dense layer's units are repeated at every pixel (Hariharan et al.).
    fc = hypercolumns(model, x, "fc")
    logits = np.asarray(model(x))
    # The whole model (c1, c2, a 16-pixel average, a dense layer of 2) in two different calls.
    n_terms = C2_TERMS + 16 + 2
    scale = max(s2, 1.0) * np.abs(model.get_layer("fc").get_weights()[0]).sum(axis=0).max()
    assert_close_f32(
        fc, np.broadcast_to(logits[:, None, None, :], (2, 8, 8, 2)), n_terms=n_terms, scale=scale
    )
    np.testing.assert_array_equal(fc, hypercolumns(model, x, "fc"))


def test_errors():
    model = pixel_model()
    x = random_images(1, (8, 8, 1))
    with pytest.raises(ValueError, match="size must be"):
        hypercolumns(model, x, "c1", size=(0, 4))
    with pytest.raises(ValueError, match="unknown layer"):
        hypercolumns(model, x, "nope")
