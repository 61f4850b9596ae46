"""Vanilla gradients (Simonyan et al., 2014) and gradient x input (Shrikumar et al., 2016)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..core.graph import ClassScore, gradient_fn, map_batches
from ..core.targets import Prepared, prepare


def vanilla_gradients(
    model: keras.Model,
    images,
    target=None,
    *,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Gradient of the target class score with respect to the input pixels.

    Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks", arXiv:1312.6034.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1], floats are used as given.
    target : int, sequence of int or None
        Class per image (one int for all); None uses each image's predicted class.
    logits : bool
        Differentiate the logit rather than the softmax probability when the model ends in a
        softmax (the model itself is not changed).
    preprocess : callable or None
        Applied to the images inside the graph before the model (gradients flow through it).
    batch_size : int or None
        Images per compiled call (default 32, up to 128 for small images).

    Returns
    -------
    ndarray, float32, ``(N, H, W, C)``: signed gradients.
    """
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    return input_gradients(model, p)


def gradient_x_input(
    model: keras.Model,
    images,
    target=None,
    *,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Gradient times input, ``x * d score / d x`` (Shrikumar et al., 2016, arXiv:1605.01713).

    Same parameters as :func:`vanilla_gradients`; returns signed ``(N, H, W, C)`` float32.
    For a linear model it is each pixel's exact contribution ``w * x`` to the score.
    """
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    return times_input(model, p)


def input_gradients(model: keras.Model, p: Prepared) -> np.ndarray:
    """``d score / d x`` for a prepared call, chunked through one compiled function."""
    fn = gradient_fn(model, ClassScore(), p.tap, p.x)
    return map_batches(fn, [p.x, p.aux], p.batch_size)[1].astype(np.float32, copy=False)


def times_input(model: keras.Model, p: Prepared) -> np.ndarray:
    """``x * d score / d x`` for a prepared call."""
    return (p.x * input_gradients(model, p)).astype(np.float32)
