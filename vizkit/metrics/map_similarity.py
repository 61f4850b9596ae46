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

import numpy as np
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
    return Reference(a, (measure,)).compare(b)[measure]


def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of ``|a|`` and ``|b|`` per image, in [-1, 1] (ties get their
    average rank)."""
    return similarity(a, b, "spearman")


def ssim(a, b) -> np.ndarray:
    """Structural similarity (Wang et al., 2004) of the normalised absolute maps, per image.

    scikit-image's :func:`~skimage.metrics.structural_similarity` with ``data_range=1`` and a
    7x7 window (smaller, odd, for maps under 7 pixels).
    """
    return similarity(a, b, "ssim")


def hog_similarity(a, b) -> np.ndarray:
    """Pearson correlation of the HOG features (Dalal & Triggs, 2005) of the normalised
    absolute maps, per image (Adebayo et al., 2018).

    scikit-image's :func:`~skimage.feature.hog` with 9 orientations, 3x3-cell blocks and 8x8-pixel
    cells (smaller cells for maps under 24 pixels, so that at least one block fits).
    """
    return similarity(a, b, "hog")


class Reference:
    """Maps that many others are compared with (the trained model's maps in the randomisation
    test): their ranks, normalised maps and HOG features are computed once.

    Parameters
    ----------
    maps : array_like
        ``(N, H, W)``; NaN counts as zero.
    measures : sequence of str
        The :data:`MEASURES` that :meth:`compare` will report.
    """

    def __init__(self, maps, measures=MEASURES):
        self.maps = _maps(maps)
        self.measures = tuple(choice(m, "similarity", MEASURES) for m in measures)
        self._views = {m: self._view(self.maps, m, reference=True) for m in self.measures}

    def compare(self, maps) -> dict[str, np.ndarray]:
        """``{measure: (N,) float32}``: how alike ``maps`` are to the reference maps."""
        other = _maps(maps)
        if other.shape != self.maps.shape:
            raise ValueError(
                f"maps must be (N, H, W) arrays of one shape, got {self.maps.shape} and "
                f"{other.shape}"
            )
        out = {}
        for m in self.measures:
            mine, theirs = self._views[m], self._view(other, m)
            if m == "ssim":
                win = _ssim_window(self.maps.shape[1:])
                out[m] = np.asarray(
                    [
                        structural_similarity(x, y, data_range=1.0, win_size=win)
                        for x, y in zip(mine, theirs, strict=True)
                    ],
                    np.float32,
                )
            elif m == "spearman":
                out[m] = _constants(mine[1], theirs[1], _rank_correlation(mine[0], theirs[0]))
            else:  # a Pearson correlation of HOG features
                out[m] = _constants(mine[1], theirs[1], pearson_rows(mine[0], theirs[0]))
        return out

    @staticmethod
    def _view(maps: np.ndarray, measure: str, *, reference: bool = False):
        if measure == "spearman":
            magnitude = np.abs(maps).reshape(len(maps), -1)
            # Compared maps keep their ranks in sorted order (see _rank_correlation).
            ranks = (
                _standardised(average_ranks(magnitude)) if reference else sorted_ranks(magnitude)
            )
            return ranks, _flat(magnitude)
        normalised = normalize_map(np.abs(maps), channels=None).astype(np.float64)
        if measure == "ssim":
            _ssim_window(maps.shape[1:])
            return normalised
        cell = min(8, min(maps.shape[1:]) // 3)
        if cell < 1:
            raise ValueError(f"HOG needs maps of at least 3x3 pixels, got {maps.shape[1:]}")
        options = {"orientations": 9, "pixels_per_cell": (cell, cell), "cells_per_block": (3, 3)}
        features = np.stack([hog(m, **options) for m in normalised])
        return features, _flat(features)


def average_ranks(rows) -> np.ndarray:
    """Ranks (1 = smallest) within each row, ties sharing their average rank (float64).

    The same as ``scipy.stats.rankdata(rows, axis=1)``, a few times faster (float32 rows, what
    the explanation methods return, are sorted as float32).
    """
    rows = np.asarray(rows)
    order, ranks = sorted_ranks(rows)
    n, m = rows.shape
    out = np.empty(n * m)
    out[(order + np.arange(0, n * m, m)[:, None]).ravel()] = ranks.ravel()
    return out.reshape(n, m)


def sorted_ranks(rows) -> tuple[np.ndarray, np.ndarray]:
    """``(order, ranks)``: each row's ``argsort`` and the average ranks (float64) of its values
    in that sorted order, so that ``rows[i, order[i, j]]`` has rank ``ranks[i, j]``."""
    rows = np.asarray(rows)
    n, m = rows.shape
    order = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(rows, order, axis=1)
    first = np.empty((n, m), bool)  # where a run of equal values starts
    first[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=first[:, 1:])
    ranks = np.broadcast_to(np.arange(1.0, m + 1.0), (n, m))  # position j: rank j + 1
    if first.all():
        return order, ranks
    # Ties: the positions of each run of equal values (longer than one) get its average rank.
    starts = np.flatnonzero(first)  # runs in the flattened array, row by row
    lengths = np.diff(starts, append=n * m)
    tied = lengths > 1
    starts, lengths = starts[tied], lengths[tied]
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    positions += np.arange(len(positions))
    ranks = ranks.ravel()  # a copy: the broadcast view has one row
    ranks[positions] = np.repeat(starts % m + (lengths + 1) / 2, lengths)
    return order, ranks.reshape(n, m)


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
def _maps(maps) -> np.ndarray:
    arr = np.asarray(maps)
    # float32 maps stay float32 (sorting them is twice as fast); anything else becomes float64.
    arr = np.nan_to_num(arr.astype(np.float32 if arr.dtype == np.float32 else np.float64))
    if arr.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) arrays, got shape {arr.shape}")
    return arr


def _standardised(ranks: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (rows that do not vary become 0)."""
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", centred, centred))[:, None]
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)


def _rank_correlation(reference: np.ndarray, other: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Pearson correlation of standardised reference ranks with ranks given in sorted order
    (:func:`sorted_ranks`): the reference is gathered in the other's order, so the other's ranks
    are never scattered back. NaN where the other row does not vary."""
    order, ranks = other
    centred = ranks - (ranks.shape[1] + 1) / 2  # average ranks always have this mean
    dot = np.einsum("ij,ij->i", np.take_along_axis(reference, order, axis=1), centred)
    norm = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, dot / norm, np.nan)


def _ssim_window(shape) -> int:
    side = min(shape)
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise ValueError(f"SSIM needs maps of at least 3x3 pixels, got {tuple(shape)}")
    return win


def _flat(rows: np.ndarray) -> np.ndarray:
    """Which rows do not vary."""
    return np.ptp(rows, axis=1) == 0


def _constants(flat_a: np.ndarray, flat_b: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with the constant-map convention: 1 if both rows of what was compared (absolute
    maps or features) are flat, 0 if one is."""
    out = np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, values))
    return out.astype(np.float32)
