"""What the export knows about its images: preprocessing, class names, predictions, labels.

Preprocessing presets and label files come from :mod:`vizkit.preprocessing`
(``get_preset(name) -> callable``, ``load_labels(spec) -> list[str]``). Until that module is in
the build, :func:`resolve_preprocess` accepts callables only and :func:`resolve_labels` reads
lists and plain label files itself.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.graph import Tap, final_activation, map_batches, predict_fn


def resolve_preprocess(spec) -> tuple[str | None, Callable | None]:
    """``(name, function)`` for ``preprocess=``: None, a preset name or a callable.

    The name is what the manifest records (a callable is named by its module and qualified
    name, so that a rerun with the same function resumes).

    Raises
    ------
    TypeError
        For anything else.
    ValueError
        For a preset name when :mod:`vizkit.preprocessing` is not available, or an unknown one.
    """
    if spec is None:
        return None, None
    if isinstance(spec, str):
        module = _preprocessing()
        if module is None or not hasattr(module, "get_preset"):
            raise ValueError(
                f"preprocess={spec!r} names a preset, but vizkit.preprocessing is not part of "
                "this build; pass a callable (applied to the batch before the model)"
            )
        return spec, module.get_preset(spec)
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__qualname__
        return f"{getattr(spec, '__module__', '') or ''}.{name}".lstrip("."), spec
    raise TypeError(
        f"preprocess must be None, a preset name or a callable, got {type(spec).__name__}"
    )


def resolve_labels(spec) -> list[str] | None:
    """Class names for ``labels=``: None, a list of names, a label file or a named set.

    With :mod:`vizkit.preprocessing` its ``load_labels`` decides; without it, a list (or tuple)
    of strings is used as given and a file is read as one name per line (or a JSON list).

    Raises
    ------
    TypeError, ValueError, FileNotFoundError
        For anything that is not a usable list of class names.
    """
    if spec is None:
        return None
    module = _preprocessing()
    if module is not None and hasattr(module, "load_labels"):
        return [str(name) for name in module.load_labels(spec)]
    if isinstance(spec, (list, tuple)):
        if not all(isinstance(s, str) for s in spec):
            raise TypeError("labels must be a list of class names (strings)")
        return list(spec)
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"labels: no label file at {str(path)!r} (named label sets such as 'imagenet' "
                "need vizkit.preprocessing)"
            )
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            names = json.loads(text)
            if not isinstance(names, list):
                raise ValueError(f"labels: {str(path)!r} must hold a JSON list of names")
            return [str(n) for n in names]
        return [line.strip() for line in text.splitlines() if line.strip()]
    raise TypeError(
        f"labels must be None, a list of class names or a label file, got {type(spec).__name__}"
    )


def _preprocessing():
    try:
        return importlib.import_module("vizkit.preprocessing")
    except ImportError:
        return None


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
    """``"7"``, or ``"281 tabby"`` when class names are known."""
    if isinstance(index, (int, np.integer)) and names and 0 <= int(index) < len(names):
        name = str(names[int(index)])
        return str(int(index)) if name == str(int(index)) else f"{int(index)} {name}"
    return str(index)
