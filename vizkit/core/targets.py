"""What every attribution method shares: image batches, target classes and expanded chunks.

Methods that evaluate the model on many modified copies of each image (SmoothGrad's noisy copies,
integrated gradients' path points, occlusion's occluded copies) feed the copies to one compiled
function in chunks planned by :func:`plan_chunks`, so that one call sees at most ``batch_size``
model inputs however the copies are spread over images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np

from .graph import Tap, check_batch_size, map_batches, predict_fn
from .images import to_batch


@dataclass(frozen=True)
class Prepared:
    """A validated call: float32 NHWC images, one target class per image and the pass to run."""

    x: np.ndarray
    aux: np.ndarray
    tap: Tap
    batch_size: int


def prepare(
    model: keras.Model,
    images,
    target,
    *,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    relu: str = "normal",
) -> Prepared:
    """Convert ``images`` with :func:`to_batch` and resolve ``target`` (``None`` = predicted).

    ``batch_size=None`` is :func:`vizkit.core.graph.default_batch_size` of the images.
    """
    x = to_batch(images, model)
    size = check_batch_size(batch_size, x)
    tap = Tap(logits=bool(logits), relu=relu, preprocess=preprocess)
    aux = resolve_targets(model, x, target, tap=Tap(logits=True, preprocess=preprocess), size=size)
    return Prepared(x=x, aux=aux, tap=tap, batch_size=size)


def resolve_targets(
    model: keras.Model, x: np.ndarray, target, *, tap: Tap, size: int
) -> np.ndarray:
    """One int32 class index per image; ``None`` means each image's predicted class.

    Raises
    ------
    TypeError
        For a target that is not an integer or a sequence of integers.
    ValueError
        For a wrong number of targets or a class index outside ``[0, num_classes)``.
    """
    n = len(x)
    if target is None:
        scores = map_batches(predict_fn(model, tap, x), [x], size)
        return scores.reshape(n, -1).argmax(axis=1).astype(np.int32)
    arr = np.asarray(target)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"target must be a class index (int), a list of class indices or None; got {target!r}"
        )
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    elif arr.ndim != 1 or len(arr) != n:
        raise ValueError(
            f"target must give one class per image: got {arr.shape[0] if arr.ndim else 0} "
            f"targets (shape {arr.shape}) for {n} images"
        )
    classes = num_classes(model, x, tap)
    bad = arr[(arr < 0) | (arr >= classes)]
    if bad.size:
        raise ValueError(
            f"target {int(bad[0])} is out of range: model {model.name!r} has {classes} "
            f"output classes (0..{classes - 1})"
        )
    return arr.astype(np.int32)


def num_classes(model: keras.Model, x: np.ndarray, tap: Tap) -> int:
    """Number of scores in the model's first output (all non-batch axes flattened)."""
    outputs = getattr(model, "outputs", None)
    if outputs:
        dims = outputs[0].shape[1:]
        if all(d is not None for d in dims):
            return int(np.prod(dims, dtype=np.int64))
    return int(np.prod(predict_fn(model, tap, x)(x[:1]).shape[1:], dtype=np.int64))


def plan_chunks(n_images: int, per_image: int, batch_size: int) -> Iterator[tuple[slice, slice]]:
    """``(images, copies)`` slices so that one call evaluates at most ``batch_size`` inputs.

    With fewer copies per image than ``batch_size``, whole groups of images go in one call;
    otherwise one image at a time, its copies split into chunks of ``batch_size``.
    """
    if per_image <= batch_size:
        group = max(1, batch_size // per_image)
        for start in range(0, n_images, group):
            yield slice(start, min(start + group, n_images)), slice(0, per_image)
        return
    for i in range(n_images):
        for start in range(0, per_image, batch_size):
            yield slice(i, i + 1), slice(start, min(start + batch_size, per_image))
