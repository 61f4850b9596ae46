"""Streaming image batches fitted to a model: what dataset-scale methods iterate over."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import keras
import numpy as np

from .graph import check_batch_size
from .images import model_input_shape, to_batch
from .sources import open_source

T = TypeVar("T")
_END = object()


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


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced up to ``depth`` ahead by a background thread.

    For loops whose NumPy preparation of the next model input (masked copies, noisy copies)
    can run while TensorFlow computes on the current one: both release the GIL. An exception
    raised while producing an item is raised here, at that item; leaving the loop early stops
    the producer after at most ``depth`` more items.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((item, None))
            slots.put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put((_END, exc))

    worker = threading.Thread(target=produce, name="vizkit-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
