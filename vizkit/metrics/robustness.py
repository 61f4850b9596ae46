"""Robustness of a map to tiny input changes: max-sensitivity (Yeh et al., 2019)."""

from __future__ import annotations

import keras
import numpy as np

from ..core.checks import positive_int, positive_number
from ..core.graph import check_batch_size
from ..core.images import to_batch
from ..core.targets import prepare
from .inputs import explainer

#: Each :func:`vizkit.explain` call gets about this many chunks of noisy copies, so that calls
#: stay few while memory stays bounded by a handful of chunks.
CHUNKS_PER_CALL = 4


def sensitivity(
    model: keras.Model,
    images,
    method,
    targets=None,
    *,
    samples: int = 10,
    radius: float = 0.02,
    seed: int | None = 0,
    batch_size: int | None = None,
    **options,
) -> np.ndarray:
    """Max-sensitivity: the largest relative change of the map under small uniform noise.

    Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity and Sensitivity of
    Explanations", arXiv:1901.09392. For each image ``x`` and ``samples`` noisy copies
    ``y = x + u``, ``u ~ U(-radius, radius)`` per pixel and channel (not clipped), the value is
    ``max ||map(y) - map(x)|| / ||map(x)||`` (Frobenius norms), with the class fixed to the
    target of ``x``. Lower is better: 0 means the map does not move at all.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1].
    method : str or callable
        A name from :data:`vizkit.registry.EXPLANATIONS` (maps from :func:`vizkit.explain`) or
        ``f(model, images, targets) -> (N, H, W)``.
    targets : int, sequence of int or None
        Class per image; None uses each image's predicted class.
    samples : int
        Noisy copies per image; all copies go through the method's batched passes together.
    radius : float
        Half-width of the uniform noise, in the scale the model sees.
    seed : int or None
        Seed of the noise; copy ``s`` of image ``i`` gets the same noise whatever the batching.
    batch_size : int or None
        Model inputs per compiled call, default 32.
    **options
        Passed on to the method (e.g. ``samples=`` of SmoothGrad, ``layer=`` of Grad-CAM).

    Returns
    -------
    ndarray, float32, ``(N,)``; 0 where the map of ``x`` and every copy is zero, ``inf`` where
    only the map of ``x`` is.

    Raises
    ------
    ValueError
        For an unknown method name (the message lists the known ones), ``samples < 1``, a
        radius that is not a positive number, or a bad target.
    """
    samples = positive_int(samples, "samples")
    radius = positive_number(radius, "radius")
    size = check_batch_size(batch_size)
    explain = explainer(method, options, batch_size)
    x = to_batch(images, model)
    aux = prepare(model, x, targets, batch_size=size).aux
    original = np.nan_to_num(explain(model, x, aux).astype(np.float64)).reshape(len(x), -1)
    norms = np.sqrt((original**2).sum(axis=1))
    root = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
    worst = np.zeros(len(x))
    group = max(1, CHUNKS_PER_CALL * size // samples)
    for start in range(0, len(x), group):
        idx = np.arange(start, min(start + group, len(x)))
        noisy = np.empty((len(idx), samples, *x.shape[1:]), np.float32)
        for row, i in enumerate(idx):
            # Noise of image i depends on (seed, i) only, not on the grouping.
            np.random.default_rng([root, int(i)]).random(out=noisy[row], dtype=np.float32)
        noisy *= 2 * radius
        noisy += x[idx, None] - radius
        maps = explain(model, noisy.reshape(-1, *x.shape[1:]), np.repeat(aux[idx], samples))
        maps = np.nan_to_num(maps).reshape(len(idx), samples, -1)
        change = np.sqrt(((maps - original[idx, None]) ** 2).sum(axis=2)).max(axis=1)
        worst[idx] = change
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(norms > 0, worst / norms, np.where(worst > 0, np.inf, 0.0))
    return relative.astype(np.float32)
