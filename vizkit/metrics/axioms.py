"""Completeness: do the attributions add up to the score difference they explain?"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..attribution.integrated import integrated_gradients
from ..core.checks import positive_int
from ..core.graph import map_batches, predict_fn
from ..core.images import as_array, to_batch
from ..core.targets import prepare
from .inputs import check_baseline


def completeness(
    model: keras.Model,
    images,
    attributions=None,
    targets=None,
    *,
    baseline=0.0,
    steps: int = 50,
    logits: bool = True,
    blur_sigma: float | None = None,
    return_parts: bool = False,
    batch_size: int | None = None,
    preprocess: Callable | None = None,
):
    """Relative completeness error ``|sum(a) - (F(x) - F(b))| / |F(x) - F(b)|`` per image.

    Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks",
    arXiv:1703.01365: integrated gradients satisfy completeness, so their attributions of an
    image add up to the score difference between the image and the baseline; the error shrinks
    as the path integral gets more ``steps``. Any signed attribution can be checked
    (gradient x input of a bias-free linear model is complete, for example). Lower is better.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1].
    attributions : array_like or None
        Signed ``(N, H, W, C)`` attributions (or ``(N, H, W)`` maps whose channels were summed);
        None computes integrated gradients
        (:func:`vizkit.attribution.integrated_gradients`, Gauss-Legendre rule) from ``baseline``
        with ``steps`` path points.
    targets : int, sequence of int or None
        Class per image; None uses each image's predicted class.
    baseline : float, array_like or "blur"
        The reference input ``b`` (see :func:`deletion`).
    steps : int
        Path points of the integrated gradients computed when ``attributions`` is None.
    logits : bool
        Score ``F`` is the logit before a final softmax (integrated gradients' default) or the
        model's own output.
    return_parts : bool
        Also return ``sum(a)`` and ``F(x) - F(b)``.

    Returns
    -------
    error : ndarray, float32, ``(N,)``
        Relative error (``|delta|`` floored at 1e-12).
    total, delta : ndarray, float32, ``(N,)``
        Only with ``return_parts=True``.

    Raises
    ------
    ValueError
        For attributions whose shape does not match the images, ``steps < 1``, a baseline of the
        wrong shape, or a bad target.
    """
    x = to_batch(images, model)
    steps = positive_int(steps, "steps")
    base = check_baseline(baseline, x, blur_sigma)
    if attributions is not None:
        attributions = _signed(attributions, x)
    p = prepare(model, x, targets, logits=logits, preprocess=preprocess, batch_size=batch_size)
    if attributions is None:
        # Integrated gradients score both ends of each path anyway: take F(x) - F(b) from them.
        result = integrated_gradients(
            model,
            x,
            p.aux,
            baseline=base,
            steps=steps,
            warn=False,
            logits=logits,
            preprocess=preprocess,
            batch_size=p.batch_size,
        )
        attributions, delta = result.attributions, result.delta.astype(np.float64)
    else:
        fn = predict_fn(model, p.tap, x)
        rows = np.arange(len(x))
        scores = [
            map_batches(fn, [v], p.batch_size).reshape(len(x), -1)[rows, p.aux] for v in (x, base)
        ]
        delta = scores[0].astype(np.float64) - scores[1].astype(np.float64)
    total = np.asarray(attributions, np.float64).reshape(len(x), -1).sum(axis=1)
    error = (np.abs(total - delta) / np.maximum(np.abs(delta), 1e-12)).astype(np.float32)
    if return_parts:
        return error, total.astype(np.float32), delta.astype(np.float32)
    return error


def _signed(attributions, x: np.ndarray) -> np.ndarray:
    arr = as_array(attributions, "attributions")
    n, h, w, c = x.shape
    if arr.shape not in ((n, h, w), (n, h, w, c)):
        raise ValueError(
            f"attributions must have shape (N, H, W, C) = {x.shape} or (N, H, W) = {(n, h, w)} "
            f"(channels summed), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("attributions must be finite to be summed; got NaN or infinite values")
    return arr
