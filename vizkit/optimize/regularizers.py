"""Penalties on the image being optimised (subtracted from the objective, per image).

Each regulariser is an immutable (hashable) object called as ``r(images) -> (N,)`` on images
``(N, H, W, C)`` in [0, 1] (before transforms). They are the "with regularisation" variants of
activation maximisation: an L2 penalty keeps pixels near grey, total variation favours smooth
piecewise-constant images, and the blur penalty pulls each step towards a blurred copy
(Mahendran & Vedaldi, 2015; Yosinski et al., 2015, "Understanding Neural Networks Through Deep
Visualization").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class L2:
    """``weight * mean((x - 0.5)**2)``: distance of the pixels from mid grey."""

    weight: float

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        return self.weight * tf.reduce_mean(tf.square(images - 0.5), axis=[1, 2, 3])


@dataclass(frozen=True)
class TotalVariation:
    """``weight * (sum |x[i+1, j] - x[i, j]| + sum |x[i, j+1] - x[i, j]|) / (H * W * C)``."""

    weight: float

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        size = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
        return self.weight * tf.image.total_variation(images) / size


@dataclass(frozen=True)
class Blur:
    """``weight * mean((x - blur(x))**2) / 2`` with a 3x3 box blur held constant.

    Its gradient, ``weight * (x - blur(x))``, moves each pixel towards its neighbourhood mean.
    """

    weight: float

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        blurred = tf.stop_gradient(tf.nn.avg_pool2d(images, 3, 1, "SAME"))
        return 0.5 * self.weight * tf.reduce_mean(tf.square(images - blurred), axis=[1, 2, 3])


def l2(weight: float = 1.0) -> L2:
    """L2 penalty towards grey."""
    return L2(_weight(weight))


def total_variation(weight: float = 1.0) -> TotalVariation:
    """Total-variation penalty (anisotropic, mean over pixels and channels)."""
    return TotalVariation(_weight(weight))


def blur(weight: float = 1.0) -> Blur:
    """Blur penalty (pulls the image towards its 3x3 box-blurred copy)."""
    return Blur(_weight(weight))


def get_regularizers(spec) -> tuple:
    """``None`` or a list of regularisers -> a tuple of regularisers."""
    if spec is None:
        return ()
    if callable(spec):
        spec = [spec]
    regs = tuple(spec)
    for r in regs:
        if not callable(r):
            raise TypeError(f"each regularizer must be callable as r(images) -> (N,), got {r!r}")
    return regs


def _weight(weight) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or weight < 0:
        raise ValueError(f"weight must be a non-negative float, got {weight!r}")
    return float(weight)
