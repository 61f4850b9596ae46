"""The atlas's computations: one pass over the data for every layer, then maximisation.

:func:`layer_summaries` is the compiled pass of the atlas's dataset job
(:class:`vizkit.engines.jobs.AtlasJob`): ONE forward pass per chunk captures every requested
layer, and for each layer the graph reduces the activations to what the atlas keeps: every
channel's best score and where it is (for the top-k and its receptive-field crops), the channel
statistics of :func:`vizkit.diagnose` (dead, constant, sparsity) and the channel histograms of
:class:`vizkit.engines.reductions.Histogram`. Only these reductions leave the graph, never the
activations, so a chunk's cost is one forward pass whatever the number of channels.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.graph import Tap, compiled, forward, image_spec
from ..engines.reductions import HIST_BINS, HIST_MIN_EXP, HIST_SPAN_EXP
from ..methods.diagnose import activation_stats, luminance
from ..methods.top_activating import map_scores


def layer_summaries(
    model: keras.Model,
    paths: tuple[str, ...],
    images: np.ndarray,
    *,
    preprocess: Callable | None = None,
    dead_tol: float = 0.0,
    bins: int = HIST_BINS,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Per-layer reductions of one batch, from one forward pass.

    Parameters
    ----------
    paths : tuple of str
        Resolved paths of layers with a 4-D ``(N, h, w, C)`` output.
    images : ndarray, float32, (n, H, W, C)
        Fitted to the model.

    Returns
    -------
    dict
        ``{path: {"top": {"scores": (n, C), "locations": (n, C, 2)}, "stats": {...},
        "hist": {...}}}``: the scores and argmax locations of :func:`vizkit.top_activating`
        (``reduce="max"``), the statistics :class:`vizkit.engines.ChannelStats` merges and the
        histogram :class:`vizkit.engines.reductions.Histogram` merges.
    """
    fn = _summary_fn(model, tuple(paths), preprocess, float(dead_tol), int(bins), images)
    found = fn(tf.convert_to_tensor(images))
    return {
        p: {part: {name: v.numpy() for name, v in values.items()} for part, values in d.items()}
        for p, d in found.items()
    }


def channel_histogram(act: tf.Tensor, bins: int = HIST_BINS) -> dict[str, tf.Tensor]:
    """In-graph per-channel histogram of ``act`` ``(..., C)`` on the power-of-two bins of
    :class:`vizkit.engines.reductions.Histogram` (same rule, same counts as its NumPy
    :meth:`~vizkit.engines.reductions.Histogram.of_values`)."""
    channels = tf.shape(act)[-1]
    x = tf.reshape(tf.cast(act, tf.float64), (-1, channels))
    finite = tf.math.is_finite(x)
    inf = tf.constant(np.inf, tf.float64)
    low = tf.reduce_min(tf.where(finite, x, inf), axis=0)
    high = tf.reduce_max(tf.where(finite, x, -inf), axis=0)
    has = high >= low
    zero = tf.zeros_like(low)
    absmax = tf.where(has, tf.maximum(tf.abs(low), tf.abs(high)), zero)
    floor = tf.where(absmax > 0, _floor_log2(absmax) - HIST_SPAN_EXP, HIST_MIN_EXP)
    floor = tf.maximum(floor, HIST_MIN_EXP)
    spread = tf.where(high > low, high - low, zero)
    # The narrowest width that fits is 2**g, 2**(g+1) or 2**(g+2), g = floor(log2(spread /
    # bins)) (see Histogram); g - 1 is tried too, a guard that costs nothing.
    g = _floor_log2(tf.where(spread > 0, spread, tf.ones_like(spread))) - int(np.log2(bins))
    lo0, hi0 = tf.where(has, low, zero), tf.where(has, high, zero)
    exponent = floor
    found = tf.zeros_like(has)
    for step in range(-1, 4):
        candidate = tf.maximum(g + step, HIST_MIN_EXP)
        width = _pow2(candidate)
        fits = tf.floor(hi0 / width) - tf.floor(lo0 / width) < bins
        take = fits & ~found & (spread > 0)
        exponent = tf.where(take, tf.maximum(floor, candidate), exponent)
        found = found | take
    width = _pow2(exponent)
    start = tf.where(has, tf.floor(lo0 / width), zero)
    index = tf.cast(tf.floor(tf.where(finite, x, zero) / width) - start, tf.int32)
    offset = tf.range(channels, dtype=tf.int32) * bins
    total = channels * bins
    flat = tf.where(finite, index + offset, total)  # non-finite values go to a bin left out
    counts = tf.math.bincount(
        tf.reshape(flat, (-1,)), minlength=total + 1, maxlength=total + 1, dtype=tf.int64
    )
    return {
        "exponent": tf.cast(exponent, tf.int64),
        "start": tf.cast(start, tf.int64),
        "counts": tf.reshape(counts[:total], (channels, bins)),
        "low": low,
        "high": high,
    }


def _floor_log2(values: tf.Tensor) -> tf.Tensor:
    """Exact ``floor(log2(v))`` of positive normal float64 values: their binary exponent."""
    bits = tf.bitcast(values, tf.int64)
    return tf.cast(tf.bitwise.right_shift(bits, 52) & 0x7FF, tf.int32) - 1023


def _pow2(exponent: tf.Tensor) -> tf.Tensor:
    """``2.0 ** exponent`` in float64, exactly (built from the exponent bits)."""
    biased = tf.cast(exponent + 1023, tf.int64)
    return tf.bitcast(tf.bitwise.left_shift(biased, 52), tf.float64)


def _summary_fn(model, paths: tuple[str, ...], preprocess, dead_tol: float, bins: int, example):
    tap = Tap(capture=paths, preprocess=preprocess)

    def make():
        def fn(x):
            captured = forward(model, x, tap)[1]
            lum = tf.cast(luminance(x), tf.float64)[..., None]
            out = {}
            for p in paths:
                act = captured[p]
                units = tf.range(tf.shape(act)[-1], dtype=tf.int32)
                scores, locations = map_scores(act, units, "max")
                out[p] = {
                    "top": {"scores": scores, "locations": locations},
                    "stats": activation_stats(act, lum, dead_tol),
                    "hist": channel_histogram(act, bins),
                }
            return out

        return fn, (image_spec(example),)

    return compiled(model, ("atlas", tap, dead_tol, bins), make)
