"""What the export knows about its images: preprocessing, class names, predictions, labels.

Preprocessing presets and label files come from :mod:`vizkit.preprocessing`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.graph import Tap, final_activation, map_batches, predict_fn
from ..preprocessing import label_of, load_labels


def resolve_labels(spec) -> list[str] | None:
    """Class names for ``labels=``: None, ``"imagenet"``, a label file or a list of names
    (:func:`vizkit.preprocessing.load_labels`)."""
    if spec is None:
        return None
    return load_labels(os.fspath(spec) if isinstance(spec, os.PathLike) else spec)


def image_sha1(image: np.ndarray) -> str:
    """Short SHA-1 of an image's float32 pixels: a changed image under the same id is noticed."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:12]


def is_classifier(model) -> bool:
    """Whether the model's first output is one score per class, ``(N, classes)``."""
    outputs = getattr(model, "outputs", None)
    return bool(outputs) and len(outputs[0].shape) == 2


def predictions(model, x: np.ndarray, preprocess: Callable | None, batch_size: int):
    """``(classes, scores, probabilities)``: the argmax class of every image, its output value,
    and whether that value is a softmax probability (else a raw score)."""
    fn = predict_fn(model, Tap(preprocess=preprocess), x)
    out = np.asarray(map_batches(fn, [x], batch_size)).reshape(len(x), -1)
    classes = out.argmax(axis=1)
    scores = out[np.arange(len(x)), classes]
    return classes.astype(int), scores.astype(float), final_activation(model) == "softmax"


def true_label(value) -> Any:
    """A label from the source as JSON: an int class (one-hot vectors become their argmax), a
    string, or None."""
    arr = np.asarray(value)
    if arr.ndim == 1 and arr.size > 1:
        return int(arr.argmax())
    if arr.ndim != 0:
        return None
    item = arr.item()
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    if isinstance(item, (bool, np.bool_)):
        return int(item)
    if isinstance(item, float) and item.is_integer():
        return int(item)
    return item


def class_name(index, names: Sequence[str] | None) -> str:
    """``"7"``, or ``"281 tabby"`` when class names are known (a name that is just the index,
    as MNIST's ``"7"``, is not repeated)."""
    if isinstance(index, (int, np.integer)):
        text = label_of(names, int(index))
        return str(int(index)) if text == f"{int(index)} {int(index)}" else text
    return str(index)
