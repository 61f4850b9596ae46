"""How concentrated a map is: sparseness (Gini index) and complexity (entropy).

Neither needs the model: both read the map alone, so they say how easy a map is to read, not
whether it is right; pair them with the faithfulness metrics.
"""

from __future__ import annotations

import numpy as np

from ..core.images import as_array


def sparseness(attributions) -> np.ndarray:
    """Gini index of ``|attributions|`` per image (Chalasani et al., 2020, arXiv:1810.06583).

    With the absolute values of an image sorted ascending, ``v_1 <= ... <= v_n``,
    ``G = sum_k (2k - n - 1) v_k / (n sum_k v_k)``: 0 when every value is equal, ``(n - 1) / n``
    when one pixel holds everything. Higher means sparser.

    Parameters
    ----------
    attributions : array_like
        ``(N, ...)``: one map per image (``(N, H, W)`` or ``(N, H, W, C)``; every value of an
        image counts). NaN counts as zero.

    Returns
    -------
    ndarray, float32, ``(N,)``; NaN for an all-zero map.
    """
    v = np.sort(_magnitudes(attributions), axis=1)
    n = v.shape[1]
    k = np.arange(1, n + 1, dtype=np.float64)
    total = v.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gini = ((2 * k - n - 1) * v).sum(axis=1) / (n * total)
    return np.where(total > 0, gini, np.nan).astype(np.float32)


def complexity(attributions) -> np.ndarray:
    """Entropy of the normalised ``|attributions|`` per image (Bhatt et al., 2020,
    arXiv:2005.00631).

    ``p = |a| / sum |a|`` over the values of an image and ``H = -sum p ln p`` (nats, with
    ``0 ln 0 = 0``): 0 when one pixel holds everything, ``ln n`` for a uniform map. Lower means
    simpler. Parameters as for :func:`sparseness`.

    Returns
    -------
    ndarray, float32, ``(N,)``; NaN for an all-zero map.
    """
    v = _magnitudes(attributions)
    total = v.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = v / total
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -terms.sum(axis=1)
    return np.where(total[:, 0] > 0, entropy, np.nan).astype(np.float32)


def _magnitudes(attributions) -> np.ndarray:
    arr = as_array(attributions, "attributions")
    if arr.ndim < 2:
        raise ValueError(
            f"attributions must hold one map per image, shape (N, H, W) or (N, H, W, C); "
            f"got shape {arr.shape}"
        )
    flat = arr.astype(np.float64).reshape(len(arr), -1)
    if np.isinf(flat).any():
        raise ValueError("attributions contains infinite values; only finite values are allowed")
    return np.abs(np.nan_to_num(flat))
