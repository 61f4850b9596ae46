"""Occlusion sensitivity: how much the target score drops when a patch is covered."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from ..core.checks import choice
from ..core.graph import ClassScore, Tap, compiled, forward, image_spec, map_batches, predict_fn
from ..core.targets import plan_chunks, prepare

SCORES = ("probability", "logit")


def occlusion(
    model: keras.Model,
    images,
    target=None,
    *,
    patch: int | tuple[int, int] = 8,
    stride: int | tuple[int, int] | None = None,
    fill: float | str = 0.0,
    score: str = "probability",
    batch_size: int | None = None,
    preprocess: Callable | None = None,
) -> np.ndarray:
    """Heat map of the drop in the target score when each patch of the image is occluded.

    Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks",
    arXiv:1311.2901, section 4.2. A ``patch`` window slides over the image with ``stride``;
    every occluded copy is built with a mask inside one compiled function and evaluated in
    chunks. Each pixel gets the mean drop ``score(x) - score(occluded)`` over the windows that
    cover it (positive: the region supports the class).

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1]; non-square images work.
    target : int, sequence of int or None
        Class per image; None uses each image's predicted class.
    patch : int or (int, int)
        Window height and width.
    stride : int, (int, int) or None
        Step between windows (None: ``patch``, non-overlapping). Windows start every ``stride``
        pixels; when that grid would leave the bottom or right border uncovered, one more
        window aligned with the border is added. With ``stride > patch`` the pixels between
        windows are never covered and are NaN in the result.
    fill : float, "mean" or "blur"
        What covers the patch: a constant in the scale the model sees (uint8 images are scaled
        to [0, 1] first), each image's per-channel mean, or the image blurred with a Gaussian
        of sigma ``max(patch) / 2``.
    score : {"probability", "logit"}
        The model's output as it is, or the logit before a final softmax.
    batch_size : int or None
        Model inputs (occluded copies) per compiled call, default 32, up to 128 for small images.
    preprocess : callable or None
        Applied to the images inside the graph before the model.

    Returns
    -------
    ndarray, float32, ``(N, H, W)``.

    Raises
    ------
    ValueError
        For a patch larger than the image, a stride or patch ``<= 0``, an unknown fill or score,
        or a bad target.
    """
    choice(score, "score", SCORES)
    p = prepare(
        model,
        images,
        target,
        logits=score == "logit",
        preprocess=preprocess,
        batch_size=batch_size,
    )
    height, width = p.x.shape[1:3]
    ph, pw = _pair(patch, "patch")
    sh, sw = (ph, pw) if stride is None else _pair(stride, "stride")
    if ph > height or pw > width:
        raise ValueError(
            f"patch {(ph, pw)} is larger than the images ({height}, {width}); use a smaller patch"
        )
    tops, lefts = np.meshgrid(
        window_starts(height, ph, sh), window_starts(width, pw, sw), indexing="ij"
    )
    tops, lefts = tops.ravel().astype(np.int32), lefts.ravel().astype(np.int32)
    covered = _fill(fill, p.x, max(ph, pw))
    occluded = _occluded_scores(model, p, covered, tops, lefts, (ph, pw))
    base = map_batches(predict_fn(model, p.tap, p.x), [p.x], p.batch_size)
    base = base.reshape(len(p.x), -1)[np.arange(len(p.x)), p.aux]
    return _spread(base[:, None] - occluded, tops, lefts, (ph, pw), (height, width))


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if not isinstance(value, (tuple, list, np.ndarray)) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in pair
    ):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def window_starts(size: int, window: int, step: int) -> np.ndarray:
    starts = list(range(0, size - window + 1, step))
    if starts[-1] + window < size:
        starts.append(size - window)
    return np.array(starts)


def _fill(fill, x: np.ndarray, patch: int) -> np.ndarray:
    if isinstance(fill, str):
        choice(fill, "fill", ("mean", "blur"))
        if fill == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
        sigma = patch / 2
        return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)
    if (
        isinstance(fill, bool)
        or not isinstance(fill, (int, float, np.number))
        or not np.isfinite(fill)
    ):
        raise ValueError(f"fill must be a number (finite), 'mean' or 'blur', got {fill!r}")
    return np.full_like(x, float(fill))


def _occluded_scores(model, p, covered, tops, lefts, size) -> np.ndarray:
    fn = _occlusion_fn(model, p.tap, p.x)
    out = np.zeros((len(p.x), len(tops)), np.float32)
    window = tf.constant(size, tf.int32)
    for imgs, where in plan_chunks(len(p.x), len(tops), p.batch_size):
        out[imgs, where] = fn(
            tf.constant(p.x[imgs]),
            tf.constant(covered[imgs]),
            tf.constant(p.aux[imgs]),
            tf.constant(tops[where]),
            tf.constant(lefts[where]),
            window,
        ).numpy()
    return out


def _spread(drops, tops, lefts, size, shape) -> np.ndarray:
    """Average each window's drop over the pixels it covers; uncovered pixels are NaN."""
    total = np.zeros((len(drops), *shape), np.float64)
    count = np.zeros(shape, np.float64)
    for k, (top, left) in enumerate(zip(tops, lefts, strict=True)):
        total[:, top : top + size[0], left : left + size[1]] += drops[:, k, None, None]
        count[top : top + size[0], left : left + size[1]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def _occlusion_fn(model: keras.Model, tap: Tap, example: np.ndarray):
    """Compiled ``f(x, covered, aux, tops, lefts, size) -> scores (n, k)`` of occluded copies."""

    def make():
        def fn(x, covered, aux, tops, lefts, size):
            n, k = tf.shape(x)[0], tf.shape(tops)[0]
            rows = tf.range(tf.shape(x)[1])[None, :]
            cols = tf.range(tf.shape(x)[2])[None, :]
            in_rows = (rows >= tops[:, None]) & (rows < tops[:, None] + size[0])
            in_cols = (cols >= lefts[:, None]) & (cols < lefts[:, None] + size[1])
            mask = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)[..., None]
            mask = tf.tile(mask, [n, 1, 1, 1])
            copies = tf.repeat(x, k, axis=0) * (1.0 - mask) + tf.repeat(covered, k, axis=0) * mask
            outputs, captured = forward(model, copies, tap)
            scores = ClassScore()(outputs, captured, tf.repeat(aux, k))
            return tf.reshape(scores, (n, k))

        signature = (
            image_spec(example),
            image_spec(example),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((2,), tf.int32),
        )
        return fn, signature

    return compiled(model, ("occlusion", tap), make)
