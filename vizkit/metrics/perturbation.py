"""Faithfulness by perturbation: deletion, insertion (Petsiuk et al., 2018) and muFidelity
(Bhatt et al., 2020).

All perturbed copies of a chunk of images go through the model in one compiled call
(:func:`vizkit.core.targets.plan_chunks` bounds a call to ``batch_size`` model inputs). The
copies of a chunk are made by one vectorised NumPy select from the masks: timed against the raw
passes in alternating rounds on the benchmark model, that costs 1.17-1.20x the raw passes where
building the same copies inside the compiled call (broadcast compare and select) cost
1.34-1.38x. The score is the model's own output for the target class:
a probability for a model ending in a softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.batches import prefetched
from ..core.checks import positive_int
from ..core.graph import predict_fn
from ..core.images import to_batch
from ..core.targets import plan_chunks, prepare
from .inputs import check_attributions, check_baseline
from .map_similarity import pearson_rows


def deletion(
    model: keras.Model,
    images,
    attributions,
    targets=None,
    *,
    steps: int = 10,
    baseline=0.0,
    blur_sigma: float | None = None,
    return_curve: bool = False,
    batch_size: int | None = None,
    preprocess: Callable | None = None,
):
    """Area under the deletion curve: the target score as the most important pixels are removed.

    Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation of Black-box
    Models", arXiv:1806.07421. Pixels are ranked by the attribution averaged over channels,
    highest first (ties in pixel order, NaN last). After step ``s`` the first
    ``floor(s * H * W / steps)`` ranked pixels (all channels) are replaced by the baseline, for
    ``s = 0 .. steps``; the value is the trapezoid area under the ``steps + 1`` equally spaced
    scores, ``mean((c[:-1] + c[1:]) / 2)``. Lower is better: a faithful map names the pixels
    whose removal destroys the score first.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1], floats are used as given.
    attributions : array_like
        ``(N, H, W)`` maps or ``(N, H, W, C)`` attributions (averaged over channels) for the
        images, e.g. from :func:`vizkit.explain`.
    targets : int, sequence of int or None
        Class per image; None uses each image's predicted class.
    steps : int
        Number of deletion steps (``>= 1``); the curve has ``steps + 1`` points.
    baseline : float, array_like or "blur"
        What removed pixels become: a constant, one image ``(H, W, C)``, one image per image
        ``(N, H, W, C)`` (in the scale the model sees), or ``"blur"``: each image blurred with a
        Gaussian of ``blur_sigma`` (default ``min(H, W) / 8``), which stays closer to the data
        than a black image.
    return_curve : bool
        Also return the curves.
    batch_size : int or None
        Model inputs (perturbed copies) per compiled call, default 32, up to 128 for small
        images.
    preprocess : callable or None
        Applied to the images inside the graph before the model.

    Returns
    -------
    values : ndarray, float32, ``(N,)``
        Area under each image's curve, in the units of the score.
    curves : ndarray, float32, ``(N, steps + 1)``
        Only with ``return_curve=True``: the score after each step (column 0 is the intact
        image).

    Raises
    ------
    ValueError
        For attributions whose shape does not match the images, ``steps < 1``, a baseline of the
        wrong shape, or a bad target.
    """
    return _area(
        "deletion", model, images, attributions, targets, steps, baseline, blur_sigma,
        return_curve, batch_size, preprocess,
    )  # fmt: skip


def insertion(
    model: keras.Model,
    images,
    attributions,
    targets=None,
    *,
    steps: int = 10,
    baseline=0.0,
    blur_sigma: float | None = None,
    return_curve: bool = False,
    batch_size: int | None = None,
    preprocess: Callable | None = None,
):
    """Area under the insertion curve: the target score as the most important pixels are
    revealed onto the baseline (Petsiuk et al., 2018).

    The mirror of :func:`deletion` with the same ranking, steps and area: after step ``s`` the
    first ``floor(s * H * W / steps)`` ranked pixels of the image are shown and the rest is the
    baseline (column 0 of the curve is the baseline alone, the last column the whole image).
    Higher is better. Parameters, returns and errors are those of :func:`deletion`.
    """
    return _area(
        "insertion", model, images, attributions, targets, steps, baseline, blur_sigma,
        return_curve, batch_size, preprocess,
    )  # fmt: skip


def mufidelity(
    model: keras.Model,
    images,
    attributions,
    targets=None,
    *,
    samples: int = 128,
    grid: int | None = None,
    subset: float = 0.2,
    baseline=0.0,
    blur_sigma: float | None = None,
    seed: int | None = 0,
    batch_size: int | None = None,
    preprocess: Callable | None = None,
) -> np.ndarray:
    """muFidelity: do the attributions of random pixel subsets predict the score drop?

    Bhatt, Weller & Moura (2020), "Evaluating and Aggregating Feature-based Model
    Explanations", arXiv:2005.00631. The image is cut into a ``grid`` x ``grid`` grid of
    superpixels; each of ``samples`` random subsets holds every cell with probability
    ``subset`` (as in Xplique's ``MuFidelity``). The value is the Pearson correlation, over the
    subsets, between the summed attribution of the subset and the drop of the target score
    (the model's own output) when the subset is set to the baseline. Higher is better; 1 means
    the attributions add up like the model's own response.

    Parameters
    ----------
    samples : int
        Random subsets per image (the same subsets for every image).
    grid : int or None
        Superpixel grid side (``1 .. min(H, W)``); None: 9 (Xplique's default), or the image
        side for images smaller than 9 pixels.
    subset : float
        Probability that a cell is in a subset, in (0, 1).
    seed : int or None
        Seed of the subsets; the same seed gives the same values whatever ``batch_size``.

    Other parameters are those of :func:`deletion`.

    Returns
    -------
    ndarray, float32, ``(N,)`` in [-1, 1]; NaN where the subset sums or the drops of an image
    do not vary (e.g. an all-zero map).
    """
    x = to_batch(images, model)
    n, h, w = x.shape[:3]
    samples = positive_int(samples, "samples", minimum=2)
    grid = min(9, h, w) if grid is None else positive_int(grid, "grid")
    if grid > min(h, w):
        raise ValueError(f"grid must be between 1 and min(H, W) = {min(h, w)}, got {grid}")
    if isinstance(subset, bool) or not isinstance(subset, (int, float)) or not 0 < subset < 1:
        raise ValueError(f"subset must be a fraction in (0, 1), got {subset!r}")
    maps = np.nan_to_num(check_attributions(attributions, x))
    base = check_baseline(baseline, x, blur_sigma)
    p = prepare(model, x, targets, logits=False, preprocess=preprocess, batch_size=batch_size)
    cells = (np.random.default_rng(seed).random((samples, grid * grid)) < subset).astype(np.int32)
    pixel_cell = (
        ((np.arange(h) * grid) // h)[:, None] * grid + ((np.arange(w) * grid) // w)[None, :]
    ).ravel()
    fn = predict_fn(model, p.tap, p.x)
    removed_pixels = cells[:, pixel_cell].reshape(samples, h, w, 1) > 0  # (samples, H, W, 1)
    scores = np.empty((n, samples), np.float32)
    chunks = (
        (imgs, subsets, np.where(removed_pixels[None, subsets], base[imgs, None], p.x[imgs, None]))
        for imgs, subsets in plan_chunks(n, samples, p.batch_size)
    )
    for imgs, subsets, copies in prefetched(chunks):
        scores[imgs, subsets] = _class_scores(fn, copies, p.aux[imgs])
    flat = maps.reshape(n, -1)
    cell_sums = np.stack([np.bincount(pixel_cell, m, minlength=grid * grid) for m in flat])
    removed = cell_sums @ cells.T.astype(np.float64)  # (N, samples)
    # drop = score(x) - score(x with the subset removed); the correlation ignores the constant.
    return pearson_rows(removed, -scores.astype(np.float64)).astype(np.float32)


def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` int32: each pixel's place in its image's order, highest value first.

    Ties keep pixel (row-major) order; NaN pixels come last.
    """
    arr = np.asarray(maps)
    n = len(arr)
    if arr.dtype in (np.float16, np.float32) and arr[0].size < 2**32:
        order = _descending_order(arr.reshape(n, -1).astype(np.float32))
    else:
        flat = np.asarray(arr, np.float64).reshape(n, -1)
        key = np.where(np.isnan(flat), -np.inf, flat)
        order = np.argsort(-key, axis=1, kind="stable")
    m = order.shape[1]
    ranks = np.empty(n * m, np.int32)
    ranks[(order + np.arange(0, n * m, m)[:, None]).ravel()] = np.tile(
        np.arange(m, dtype=np.int32), n
    )
    return ranks.reshape(arr.shape)


def _descending_order(values: np.ndarray) -> np.ndarray:
    """Each row's indices from the highest float32 value to the lowest, ties in index order and
    NaN last: a stable argsort of ``-values``, as one sort of 64-bit keys (value bits above the
    index), which NumPy sorts several times faster than a stable argsort of the values."""
    v = np.where(np.isnan(values), -np.inf, values) + np.float32(0.0)  # NaN last; -0 == +0
    bits = v.view(np.uint32)
    # Flip so that unsigned order is float order (negatives reversed), then reverse for "highest
    # first"; ties fall to the index in the low 32 bits.
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
    keys = (~ascending).astype(np.uint64) << np.uint64(32)
    keys |= np.arange(values.shape[1], dtype=np.uint64)
    keys.sort(axis=1)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.intp)


def pixel_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels removed (or revealed) after each step ``s = 0 .. steps``:
    ``floor(s * pixels / steps)``."""
    return ((np.arange(steps + 1, dtype=np.int64) * pixels) // steps).astype(np.int32)


def curve_area(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under equally spaced points on [0, 1]: ``mean((c[:-1] + c[1:]) / 2)``."""
    c = np.asarray(curves, np.float64)
    return ((c[:, :-1] + c[:, 1:]) / 2).mean(axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------
def _area(
    mode,
    model,
    images,
    attributions,
    targets,
    steps,
    baseline,
    blur_sigma,
    return_curve,
    batch_size,
    preprocess,
):
    x = to_batch(images, model)
    steps = positive_int(steps, "steps")
    maps = check_attributions(attributions, x)
    base = check_baseline(baseline, x, blur_sigma)
    # No targets: the predicted class, read off the one copy that is the image itself (the
    # first of deletion, the last of insertion) instead of a pass of its own.
    predicted = targets is None
    p = prepare(model, x, 0 if predicted else targets, logits=False, preprocess=preprocess,
                batch_size=batch_size)  # fmt: skip
    ranks = pixel_ranks(maps)
    counts = pixel_counts(ranks[0].size, steps)
    fn = predict_fn(model, p.tap, p.x)
    first, second = (base, p.x) if mode == "insertion" else (p.x, base)
    scores = None  # (N, steps + 1, classes)

    def masked(imgs, points):
        hit = ranks[imgs, None] < counts[None, points, None, None]  # (n, k, H, W)
        return imgs, points, np.where(hit[..., None], second[imgs, None], first[imgs, None])

    chunks = (masked(i, k) for i, k in plan_chunks(len(p.x), steps + 1, p.batch_size))
    for imgs, points, copies in prefetched(chunks):  # the next copies while the model runs
        out = _scores(fn, copies)
        if scores is None:
            scores = np.empty((len(p.x), steps + 1, out.shape[-1]), np.float32)
        scores[imgs, points] = out
    aux = scores[:, 0 if mode == "deletion" else steps].argmax(axis=1) if predicted else p.aux
    curves = np.take_along_axis(scores, aux[:, None, None], axis=2)[..., 0]
    values = curve_area(curves)
    return (values, curves) if return_curve else values


def _class_scores(fn, copies: np.ndarray, aux: np.ndarray) -> np.ndarray:
    """``(n, k)`` scores of class ``aux[i]`` for image ``i``'s copies ``(n, k, H, W, C)``."""
    return np.take_along_axis(_scores(fn, copies), aux[:, None, None], axis=2)[..., 0]


def _scores(fn, copies: np.ndarray) -> np.ndarray:
    """``(n, k, classes)`` model outputs of ``copies`` ``(n, k, H, W, C)`` in one compiled call."""
    n, k = copies.shape[:2]
    out = fn(tf.constant(copies.reshape(n * k, *copies.shape[2:]))).numpy()
    return out.reshape(n, k, -1)
