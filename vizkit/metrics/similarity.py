"""How alike two explanation maps are: the measures of Adebayo et al. (2018).

Spearman rank correlation of the absolute maps, the structural similarity index (SSIM) and the
Pearson correlation of histogram-of-oriented-gradients (HOG) features, each computed per image
on ``(N, H, W)`` pairs. SSIM and HOG see the absolute maps scaled to [0, 1] by their 99.5th
percentile (:func:`vizkit.attribution.normalize_map`), as the paper compares normalised maps.

A constant map (all zero, say, after a ReLU that no longer fires) has no ranks or gradients to
compare; the measures then report 1 when both maps are constant and 0 when only one is, instead
of NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata
from skimage.feature import hog
from skimage.metrics import structural_similarity

from ..attribution.normalize import normalize_map
from ..core.checks import choice

MEASURES = ("spearman", "ssim", "hog")


def similarity(a, b, measure: str = "spearman") -> np.ndarray:
    """Per-image similarity of maps ``a`` and ``b``, ``(N, H, W)`` each.

    Parameters
    ----------
    measure : {"spearman", "ssim", "hog"}
        See :func:`spearman`, :func:`ssim` and :func:`hog_similarity`.

    Returns
    -------
    ndarray, float32, ``(N,)``; 1 means identical (up to what the measure ignores).
    """
    choice(measure, "similarity", MEASURES)
    return _MEASURES[measure](a, b)


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of ``|a|`` and ``|b|`` per image, in [-1, 1]."""
    a, b = _pair(a, b)
    ra = rankdata(np.abs(a).reshape(len(a), -1), axis=1)
    rb = rankdata(np.abs(b).reshape(len(b), -1), axis=1)
    return _constants(np.abs(a), np.abs(b), pearson_rows(ra, rb))


def ssim(a, b) -> np.ndarray:
    """Structural similarity (Wang et al., 2004) of the normalised absolute maps, per image.

    scikit-image's :func:`~skimage.metrics.structural_similarity` with ``data_range=1`` and a
    7x7 window (smaller, odd, for maps under 7 pixels).
    """
    a, b = _pair(a, b)
    na, nb = _normalised(a), _normalised(b)
    side = min(a.shape[1:])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise ValueError(f"SSIM needs maps of at least 3x3 pixels, got {a.shape[1:]}")
    values = [
        structural_similarity(x, y, data_range=1.0, win_size=win)
        for x, y in zip(na, nb, strict=True)
    ]
    return np.asarray(values, np.float32)


def hog_similarity(a, b) -> np.ndarray:
    """Pearson correlation of the HOG features (Dalal & Triggs, 2005) of the normalised
    absolute maps, per image (Adebayo et al., 2018).

    scikit-image's :func:`~skimage.feature.hog` with 9 orientations, 3x3-cell blocks and 8x8-pixel
    cells (smaller cells for maps under 24 pixels, so that at least one block fits).
    """
    a, b = _pair(a, b)
    cell = min(8, min(a.shape[1:]) // 3)
    if cell < 1:
        raise ValueError(f"HOG needs maps of at least 3x3 pixels, got {a.shape[1:]}")
    options = {"orientations": 9, "pixels_per_cell": (cell, cell), "cells_per_block": (3, 3)}
    fa = np.stack([hog(m, **options) for m in _normalised(a)])
    fb = np.stack([hog(m, **options) for m in _normalised(b)])
    return _constants(fa, fb, pearson_rows(fa, fb))


def pearson_rows(a, b) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (float64).

    NaN where a row does not vary.
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / norm, np.nan)


# --------------------------------------------------------------------------------------------
def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.nan_to_num(np.asarray(a, np.float64))
    b = np.nan_to_num(np.asarray(b, np.float64))
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(
            f"maps must be two (N, H, W) arrays of one shape, got {a.shape} and {b.shape}"
        )
    return a, b


def _normalised(maps: np.ndarray) -> np.ndarray:
    return normalize_map(np.abs(maps), channels=None).astype(np.float64)


def _constants(a: np.ndarray, b: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with the constant-map convention: 1 if both rows of what was compared (maps,
    absolute maps or features) are flat, 0 if one is."""
    flat_a = np.ptp(a.reshape(len(a), -1), axis=1) == 0
    flat_b = np.ptp(b.reshape(len(b), -1), axis=1) == 0
    out = np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, values))
    return out.astype(np.float32)


_MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "spearman": spearman,
    "ssim": ssim,
    "hog": hog_similarity,
}
