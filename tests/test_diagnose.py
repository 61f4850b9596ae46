"""vizkit.diagnose: planted dead, constant and input-copy channels are found, and nothing else."""

import json

import cv2
import keras
import numpy as np
import pytest
from helpers import chain_terms, f32_tol, random_images

from vizkit import Diagnosis, diagnose, feature_maps
from vizkit.methods.diagnose import batch_stats, channel_list


def planted_model():
    """conv1: 0 copy, 1 & 4 dead, 2 constant; conv2: 1 constant; dense: 2 dead, 3 constant."""
    rng = np.random.default_rng(0)
    inp = keras.Input((8, 8, 1))
    conv1 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")
    pool = keras.layers.MaxPooling2D(2, name="pool")
    conv2 = keras.layers.Conv2D(3, 1, name="conv2")
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    dense = keras.layers.Dense(4, activation="relu", name="dense")
    model = keras.Model(inp, dense(gap(conv2(pool(conv1(inp))))), name="planted")

    k1 = np.zeros((3, 3, 1, 6), np.float32)
    b1 = np.zeros(6, np.float32)
    k1[1, 1, 0, 0] = 1.0  # identity: relu(x) = x for x in [0, 1]
    b1[1] = -1.0  # zero weights, negative bias: dead
    b1[2] = 0.7  # zero weights, positive bias: constant
    k1[1, :, 0, 3] = [-1.0, 0.0, 1.0]  # horizontal edges
    k1[..., 0, 4] = -1.0  # negative weights on non-negative input: dead
    k1[..., 0, 5] = rng.normal(size=(3, 3))
    b1[5] = 0.5
    conv1.set_weights([k1, b1])

    k2 = np.zeros((1, 1, 6, 3), np.float32)
    k2[0, 0, 3, 0] = 1.0
    k2[0, 0, [3, 5], 2] = [0.5, -0.8]
    b2 = np.array([0.0, -0.3, 0.1], np.float32)  # channel 1: zero weights, constant -0.3
    conv2.set_weights([k2, b2])

    wd = np.zeros((3, 4), np.float32)
    wd[:, 0] = [1.0, 0.0, 0.0]
    wd[:, 1] = [2.0, 0.0, -1.0]
    bd = np.array([0.1, 1.0, -0.5, 0.25], np.float32)
    dense.set_weights([wd, bd])
    return model


@pytest.fixture(scope="module")
def images():
    return random_images(12, (8, 8, 1), seed=3)


def test_reports_exactly_the_planted_channels(images):
    result = diagnose(planted_model(), images)
    assert isinstance(result, Diagnosis)
    assert [r.path for r in result.layers] == ["conv1", "pool", "conv2", "dense"]
    conv1, pool, conv2, dense = result.layers
    assert (conv1.dead, conv1.constant, conv1.input_like) == ((1, 4), (2,), (0,))
    assert conv1.constant_values == pytest.approx((0.7,))
    assert conv1.input_correlation == pytest.approx((1.0,), abs=1e-5)
    assert (pool.dead, pool.constant, pool.input_like) == ((1, 4), (2,), ())
    assert (conv2.dead, conv2.constant, conv2.input_like) == ((), (1,), ())
    assert conv2.constant_values == pytest.approx((-0.3,))
    assert (dense.dead, dense.constant, dense.input_like) == ((2,), (3,), ())
    assert dense.constant_values == pytest.approx((0.25,))
    assert set(result.problems) == {"conv1", "pool", "conv2", "dense"}
    assert result.n_images == 12


def test_sparsity_equals_the_fraction_of_zero_activations(images):
    model = planted_model()
    result = diagnose(model, images)
    maps = feature_maps(model, images, layers=["conv1", "conv2", "dense"])
    for path, acts in maps.items():
        assert result[path].sparsity == pytest.approx(float(np.mean(acts == 0)), abs=1e-9)


def assert_same_report(a, b, tol):
    """Equal reports: channel lists, counts and names exactly, float statistics to ``tol``."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_report(a[key], b[key], tol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            assert_same_report(u, v, tol)
    elif isinstance(a, float):
        assert abs(a - b) <= tol, (a, b)
    else:
        assert a == b


def test_streaming_and_iterables_give_the_same_report(images):
    model = planted_model()
    whole = diagnose(model, images, batch_size=64)
    chunked = diagnose(model, images, batch_size=5)
    stream = diagnose(model, (images[i : i + 4] for i in range(0, 12, 4)))
    # Chunks of 5 and of 64 images are different batch shapes, whose kernels may add up the
    # 3x3 convolution in another order: correlations and means (at most 1 here) move by
    # rounding; which channels are dead, constant or input-like does not.
    tol = f32_tol(9, 1.0)
    assert_same_report(chunked.to_dict(), whole.to_dict(), tol)
    assert_same_report(stream.to_dict(), whole.to_dict(), tol)
    # Exact: the same compiled calls on the same images.
    assert diagnose(model, images).to_json() == whole.to_json()


def test_healthy_layers_and_tolerances():
    model = planted_model()
    x = random_images(4, (8, 8, 1), seed=5)
    only = diagnose(model, x, layers=["conv2"])
    assert [r.path for r in only.layers] == ["conv2"]
    # Negative constant values are not "dead" even with a generous dead_tol below |-0.3|.
    assert diagnose(model, x, layers="conv2", dead_tol=0.2)["conv2"].dead == ()
    assert diagnose(model, x, layers="conv2", dead_tol=0.5)["conv2"].dead == (1,)
    # A strict copy threshold above 1 is rejected; a loose one still only flags the copy.
    with pytest.raises(ValueError, match="copy_threshold"):
        diagnose(model, x, copy_threshold=1.5)
    with pytest.raises(ValueError, match="dead_tol"):
        diagnose(model, x, dead_tol=-1)


def test_summary_and_serialisation(images):
    result = diagnose(planted_model(), images)
    text = result.summary()
    assert "conv1" in text and "dead channels [1, 4]" in text
    assert "constant channels [2]" in text and "input-like channels [0]" in text
    assert "never fires" in text and "badly sized layer" in text
    assert text.count("never fires") == 1  # each meaning is explained once
    assert channel_list((0, 1, 2, 3, 7, 9, 10)) == "[0-3, 7, 9-10]"
    as_dict = result.to_dict()
    assert as_dict["layers"][0]["dead"] == [1, 4]
    assert json.loads(result.to_json()) == as_dict
    with pytest.raises(KeyError, match="no report for layer 'gap'"):
        result["gap"]


def test_clean_model_has_no_problems():
    inp = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 3, name="c")
    model = keras.Model(inp, conv(inp))
    k = np.zeros((3, 3, 1, 2), np.float32)
    k[1, :, 0, 0] = [-1, 0, 1]
    k[:, 1, 0, 1] = [-1, 0, 1]
    conv.set_weights([k, np.zeros(2, np.float32)])
    result = diagnose(model, random_images(3, (8, 8, 1)))
    assert result.problems == {}
    assert "No dead, constant or input-like channels" in result.summary()


def test_input_correlation_sums_match_upsampling_every_channel():
    """The sums behind the input-like check, computed without upsampling the maps, equal the
    sums over maps upsampled to the input size by OpenCV's bilinear resize (half-pixel centres,
    as TensorFlow's): up (12 -> 5 after pooling), same size, down (a padded 16x16 map) and 1x1."""
    rng = np.random.default_rng(11)
    inp = keras.Input((12, 12, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="same")(inp)
    pooled = keras.layers.MaxPooling2D(2, padding="same", name="pooled")(conv)
    odd = keras.layers.Conv2D(3, 2, name="odd")(pooled)  # 5x5
    padded = keras.layers.ZeroPadding2D(2, name="padded")(conv)  # 16x16: resized down
    tiny = keras.layers.GlobalAveragePooling2D(keepdims=True, name="tiny")(odd)  # 1x1
    model = keras.Model(inp, [odd, padded, tiny])
    for layer in model.layers:
        for w in layer.weights:
            w.assign(rng.normal(size=w.shape).astype(np.float32))
    images = rng.random((3, 12, 12, 3), dtype=np.float32)
    paths = ("same", "pooled", "odd", "padded", "tiny")
    stats = batch_stats(model, paths, images)
    maps = feature_maps(model, images, layers=list(paths))
    lum = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for path in paths:
        act = maps[path].astype(np.float64)
        up = np.stack(
            [
                np.stack(
                    [
                        cv2.resize(a[..., c], (12, 12), interpolation=cv2.INTER_LINEAR)
                        for c in range(act.shape[-1])
                    ],
                    axis=-1,
                )
                for a in act
            ]
        )
        terms = {"sx": up, "sxx": up * up, "sxy": up * lum[..., None]}
        # Each term carries the float32 error of the activation (its chain of sums; squared:
        # twice) and of the float32 resize weights; the float64 sums add nothing visible.
        n_terms = 2 * (chain_terms(model, path) + 4)
        for key, term in terms.items():
            size = float(np.abs(term).sum(axis=(0, 1, 2)).max())
            tol = f32_tol(n_terms=n_terms, scale=size)
            expected = term.sum(axis=(0, 1, 2))
            np.testing.assert_allclose(stats[path][key], expected, rtol=0, atol=tol, err_msg=key)
        assert stats[path]["n_pix"] == lum.size
