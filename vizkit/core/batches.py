"""Streaming image batches fitted to a model: what dataset-scale methods iterate over."""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np

from .graph import check_batch_size
from .images import model_input_shape, to_batch
from .sources import open_source


def iter_batches(images, model: keras.Model, batch_size: int | None) -> Iterator[np.ndarray]:
    """Float32 NHWC chunks of at most ``batch_size`` images, fitted to ``model``.

    ``images`` is anything :func:`vizkit.core.sources.open_source` accepts: an array (chunked,
    so a large uint8 dataset is never held as float32 at once), image files or a folder
    (resized to the model's input), a ``tf.data``/``ray.data`` dataset, or an iterable of
    batches ``x`` or ``(x, y, ...)`` (only ``x`` is used). Each chunk is converted with
    :func:`vizkit.core.images.to_batch`.
    """
    for batch in open_source(images, batch_size=check_batch_size(batch_size), **file_fit(model)):
        yield to_batch(batch.images, model, allow_empty=True)


def file_fit(model: keras.Model) -> dict:
    """``size`` and ``channels`` that image files are read with for ``model`` (free sizes kept)."""
    height, width, channels = model_input_shape(model)
    size = None if height is None or width is None else (height, width)
    return {"size": size, "channels": channels}
