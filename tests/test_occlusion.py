"""Occlusion: the batched in-graph result equals a brute-force loop over patches."""

import keras
import numpy as np
import pytest
from helpers import RANDOM_NET_SCALE, assert_close_f32, f32_tol

import vizkit


def conv_model(shape):
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="random_normal"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


# conv_model's logits are sums of a few units at most; a softmax probability moves by less
# than its logits do.
LOGIT_SCALE = RANDOM_NET_SCALE


def fan_in(shape):
    """Terms summed along conv_model: a 3x3xC convolution, then the dense layer's inputs."""
    h, w, c = shape
    return 9 * c + 4 * ((h - 2) // 2) * ((w - 2) // 2)


def starts(size, window, step):
    """Window starts as documented: every ``step``, plus one aligned with the far border."""
    out = list(range(0, size - window + 1, step))
    if out[-1] + window < size:
        out.append(size - window)
    return out


def brute_force(model, x, target, patch, stride, fill=0.0):
    """Occluded copies built one by one in NumPy, scored by model.predict; per-pixel mean of
    the drops of the windows covering each pixel."""
    ph, pw = patch
    h, w = x.shape[1:3]
    windows = [(t, left) for t in starts(h, ph, stride[0]) for left in starts(w, pw, stride[1])]
    copies = []
    for top, left in windows:
        occluded = x[0].copy()
        occluded[top : top + ph, left : left + pw] = fill
        copies.append(occluded)
    scores = model.predict(np.stack([x[0], *copies]), verbose=0)[:, target]
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (top, left), score in zip(windows, scores[1:], strict=True):
        total[top : top + ph, left : left + pw] += scores[0] - score
        count[top : top + ph, left : left + pw] += 1
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@pytest.mark.parametrize(
    ("shape", "patch", "stride"),
    [
        ((8, 8, 1), (4, 4), (4, 4)),  # non-overlapping
        ((10, 14, 2), (3, 5), (2, 3)),  # overlapping, rectangular, non-square, border windows
    ],
)
def test_batched_occlusion_equals_a_brute_force_loop(shape, patch, stride):
    m = conv_model(shape)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    got = vizkit.occlusion(m, x, 1, patch=patch, stride=stride, batch_size=5)
    assert got.shape == (1, *shape[:2]) and got.dtype == np.float32
    expected = brute_force(m, x, 1, patch, stride)
    assert_close_f32(got[0], expected, n_terms=fan_in(shape), scale=LOGIT_SCALE)


def test_several_images_and_chunkings_agree():
    m = conv_model((8, 8, 1))
    x = np.random.default_rng(1).random((3, 8, 8, 1), dtype=np.float32)
    a = vizkit.occlusion(m, x, [0, 1, 2], patch=2, batch_size=7)
    b = vizkit.occlusion(m, x, [0, 1, 2], patch=2, batch_size=100)
    # Chunks of 7 and of 100 copies are different batch shapes: the kernels may differ.
    assert_close_f32(a, b, n_terms=fan_in((8, 8, 1)), scale=LOGIT_SCALE)
    for i in range(3):
        expected = brute_force(m, x[i : i + 1], i, (2, 2), (2, 2))
        assert_close_f32(a[i], expected, n_terms=fan_in((8, 8, 1)), scale=LOGIT_SCALE)


def quadrant_model(seed=0):
    w = np.zeros((8, 8, 1, 2), np.float32)
    w[:4, :4] = np.abs(np.random.default_rng(seed).normal(size=(4, 4, 1, 2))) + 0.1
    m = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2, name="d")]
    )
    m.get_layer("d").set_weights([w.reshape(64, 2), np.zeros(2, np.float32)])
    return m, w


def logit_tol(w, x):
    """A logit drop is the difference of two float32 dot products of 64 terms (the unoccluded
    image is scored in another call, with another batch shape, than the occluded copies)."""
    return f32_tol(64, np.abs(w[..., 0, 0] * x[0, ..., 0]).sum())


def test_only_the_used_quadrant_matters_and_logit_drops_are_linear():
    m, w = quadrant_model(seed=1)
    x = np.random.default_rng(2).random((1, 8, 8, 1), dtype=np.float32) + 0.1
    heat = vizkit.occlusion(m, x, 0, patch=2, score="logit")[0]
    tol = logit_tol(w, x)
    # Zero up to rounding: both logits sum the same 16 non-zero terms, in orders that may differ.
    assert np.abs(heat[4:, :]).max() <= tol and np.abs(heat[:, 4:]).max() <= tol
    # The smallest real drop (one 2x2 window of the quadrant) is far above the rounding.
    assert np.all(heat[:4, :4] > 100 * tol)
    # Linear logit: the drop of a window is the sum of w * x over it.
    contrib = (w[..., 0, 0] * x[0, ..., 0]).reshape(4, 2, 4, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(heat[::2, ::2], contrib, rtol=0, atol=tol)


def test_fill_options():
    m, w = quadrant_model(seed=3)
    x = np.random.default_rng(4).random((1, 8, 8, 1), dtype=np.float32)
    tol = logit_tol(w, x)
    mean = vizkit.occlusion(m, x, 0, patch=4, fill="mean", score="logit")[0]
    expected = (w[:4, :4, 0, 0] * (x[0, :4, :4, 0] - x.mean())).sum()
    assert abs(expected) > 100 * tol  # the check below means something
    np.testing.assert_allclose(mean[:4, :4], expected, rtol=0, atol=tol)
    const = vizkit.occlusion(m, x, 0, patch=4, fill=0.5, score="logit")[0]
    expected = (w[:4, :4, 0, 0] * (x[0, :4, :4, 0] - 0.5)).sum()
    assert abs(expected) > 100 * tol
    np.testing.assert_allclose(const[0, 0], expected, rtol=0, atol=tol)
    blur = vizkit.occlusion(m, x, 0, patch=4, fill="blur", score="logit")
    assert np.all(np.isfinite(blur)) and np.abs(blur[0, 4:, 4:]).max() <= tol


def test_gaps_between_windows_are_nan():
    m, _ = quadrant_model()
    heat = vizkit.occlusion(m, np.ones((8, 8, 1), np.float32), 0, patch=2, stride=3)[0]
    covered = np.zeros(8, bool)
    for s in (0, 3, 6):
        covered[s : s + 2] = True
    # Exact: which pixels are NaN is decided by integer window arithmetic.
    assert np.array_equal(np.isnan(heat), ~(covered[:, None] & covered[None, :]))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"patch": 9}, r"patch \(9, 9\) is larger than the images \(8, 8\)"),
        ({"patch": (2, 9)}, "larger than the images"),
        ({"patch": 0}, "patch must be a positive int"),
        ({"stride": 0}, "stride must be a positive int"),
        ({"stride": -2}, "stride must be a positive int"),
        ({"stride": (1, 2, 3)}, "stride must be"),
        ({"fill": "grey"}, "fill must be one of"),
        ({"fill": None}, "fill must be a number"),
        ({"score": "prob"}, "score must be one of"),
        ({"target": 5}, "out of range"),
    ],
)
def test_bad_arguments_are_named(kwargs, fragment):
    m, _ = quadrant_model()
    with pytest.raises(ValueError, match=fragment):
        vizkit.occlusion(m, np.zeros((8, 8, 1), np.float32), **{"target": 0, **kwargs})
