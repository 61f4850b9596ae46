"""Streaming image batches: what dataset-scale methods (top-activating, diagnosis) iterate over."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import keras
import numpy as np

from .graph import check_batch_size
from .images import to_batch


def iter_batches(images, model: keras.Model, batch_size: int | None) -> Iterator[np.ndarray]:
    """Float32 NHWC chunks of ``images``: an array (chunked) or an iterable of batches.

    Items of an iterable may be ``(x, y, ...)`` tuples, as ``tf.data`` and generators yield;
    only ``x`` is used (a list item is taken as a batch of images). Each item is converted with :func:`vizkit.core.images.to_batch`.
    """
    size = check_batch_size(batch_size)
    if isinstance(images, np.ndarray) or hasattr(images, "__array__"):
        arr = np.asarray(images)
        if arr.ndim != 4:  # one image or an (N, H, W) stack: small enough to convert at once
            arr = to_batch(arr, model)
        elif len(arr) == 0:
            to_batch(arr, model)  # raises the usual "empty batch" error
        # Convert chunk by chunk so a large uint8 dataset is never held as float32 at once.
        for start in range(0, len(arr), size):
            yield to_batch(arr[start : start + size], model)
        return
    if not isinstance(images, Iterable) or isinstance(images, (str, bytes)):
        raise TypeError(
            f"images must be an array or an iterable of image batches, got {type(images).__name__}"
        )
    for item in images:
        if isinstance(item, tuple) and item:
            item = item[0]
        batch = to_batch(np.asarray(item), model, allow_empty=True)
        for start in range(0, len(batch), size):
            yield batch[start : start + size]
