"""Guided backpropagation and the deconvnet view: gradients with modified ReLU backward rules."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..core.targets import prepare
from .vanilla import input_gradients


def guided_backprop(
    model: keras.Model,
    images,
    target=None,
    *,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Guided backpropagation (Springenberg et al., 2015, arXiv:1412.6806).

    At every ReLU the gradient passes only where both the forward input and the incoming
    gradient are positive. Same parameters as :func:`~vizkit.attribution.vanilla_gradients`;
    returns ``(N, H, W, C)`` float32.
    """
    p = prepare(
        model,
        images,
        target,
        logits=logits,
        preprocess=preprocess,
        batch_size=batch_size,
        relu="guided",
    )
    return input_gradients(model, p)


def deconvnet(
    model: keras.Model,
    images,
    target=None,
    *,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """The deconvnet view (Zeiler & Fergus, 2014, arXiv:1311.2901), as a modified gradient.

    Projecting a score back to pixel space through "unpooling" and transposed convolutions is
    the gradient with every ReLU's backward pass replaced by a ReLU of the incoming signal
    (the forward activation is ignored); max-pooling switches are the pooling gradient.
    Same parameters as :func:`~vizkit.attribution.vanilla_gradients`; returns
    ``(N, H, W, C)`` float32.
    """
    p = prepare(
        model,
        images,
        target,
        logits=logits,
        preprocess=preprocess,
        batch_size=batch_size,
        relu="deconv",
    )
    return input_gradients(model, p)
