"""Mergeable partial results of dataset jobs: what one chunk of images contributes.

Every engine computes one partial per chunk (the images ``[c * B, (c + 1) * B)`` of the
stream, ``B`` the chunk size) and folds the partials in chunk order, so that the local engine and
the Ray engine return the same answer whatever the number of workers:

* :class:`TopK` keeps the ``k`` best images per unit under one total order (higher score first,
  then lower global index). Merging two top-k lists is taking the top-k of their union, which is
  associative and commutative: the result is exactly that of a single pass over the data.
* :class:`ChannelStats` holds per-channel minima, maxima, zero counts and sums (for sparsity and
  the input correlation of :func:`vizkit.diagnose`). Minima, maxima and counts merge exactly in
  any order; float sums are added in chunk order, which every engine follows.

NumPy only: workers and the driver import this without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TopK:
    """The best ``k`` images of each of ``U`` units, best first.

    Attributes
    ----------
    k : int
        How many images are kept per unit (fewer while fewer have been seen).
    scores : ndarray, float32, shape (U, m), m <= k
        Scores by decreasing value; ties are ordered by increasing index (NaN scores rank last).
    indices : ndarray, int64, shape (U, m)
        Global image indices.
    extras : ndarray of object, shape (U, m), or None
        One payload per kept image and unit (e.g. a receptive-field crop), merged along.
    """

    k: int
    scores: np.ndarray
    indices: np.ndarray
    extras: np.ndarray | None = None

    @classmethod
    def empty(cls, n_units: int, k: int, *, extras: bool = False) -> TopK:
        """No image seen yet."""
        return cls(
            int(k),
            np.empty((n_units, 0), np.float32),
            np.empty((n_units, 0), np.int64),
            np.empty((n_units, 0), object) if extras else None,
        )

    @classmethod
    def of_batch(
        cls,
        scores: np.ndarray,
        start: int,
        k: int,
        extra: Callable[[int, int], Any] | None = None,
    ) -> TopK:
        """The top-k of one batch.

        Parameters
        ----------
        scores : ndarray, shape (n, U)
            Score of each image of the batch for each unit.
        start : int
            Global index of the batch's first image.
        k : int
        extra : callable ``(row, unit_position) -> payload``, optional
            Called only for the images that are kept.
        """
        s = np.asarray(scores, np.float32).T  # (U, n)
        n_units, n = s.shape
        index = np.broadcast_to(start + np.arange(n, dtype=np.int64), s.shape)
        order = np.lexsort((index, -s), axis=-1)[:, :k]
        rows = np.take_along_axis(index, order, axis=1)
        payload = None
        if extra is not None:
            payload = np.empty(order.shape, object)
            for u in range(n_units):
                for j, row in enumerate(order[u]):
                    payload[u, j] = extra(int(row), u)
        return cls(int(k), np.take_along_axis(s, order, axis=1), rows, payload)

    def merge(self, other: TopK) -> TopK:
        """The top-k of the union of two partials over disjoint images."""
        if self.k != other.k or self.scores.shape[0] != other.scores.shape[0]:
            raise ValueError(
                f"cannot merge top-k partials of different shapes: k={self.k} with {other.k}, "
                f"{self.scores.shape[0]} units with {other.scores.shape[0]}"
            )
        s = np.concatenate([self.scores, other.scores], axis=1)
        i = np.concatenate([self.indices, other.indices], axis=1)
        order = np.lexsort((i, -s), axis=-1)[:, : self.k]
        extras = None
        if self.extras is not None and other.extras is not None:
            both = np.concatenate([self.extras, other.extras], axis=1)
            extras = np.take_along_axis(both, order, axis=1)
        return TopK(
            self.k,
            np.take_along_axis(s, order, axis=1),
            np.take_along_axis(i, order, axis=1),
            extras,
        )


# Statistics merged by minimum, by maximum; every other one is a sum.
_MINIMA = frozenset({"min"})
_MAXIMA = frozenset({"max", "absmax"})


@dataclass(frozen=True)
class ChannelStats:
    """Running per-channel statistics of one layer's activations.

    ``values`` maps a statistic to its array: ``count`` (activations per channel), ``min``,
    ``max``, ``absmax``, ``zeros`` (activations with ``|a| <= dead_tol``) and, for spatial
    layers, the sums ``n_pix``, ``sx``, ``sxx``, ``sxy``, ``sy``, ``syy`` of the channel
    (upsampled to the input) against the input luminance. Sums are float64.
    """

    values: dict[str, np.ndarray]

    @classmethod
    def of_batch(cls, batch: dict[str, np.ndarray]) -> ChannelStats:
        """The statistics of one batch, as computed by :func:`vizkit.diagnose`'s pass."""
        return cls({name: np.asarray(v, np.float64) for name, v in batch.items()})

    def merge(self, other: ChannelStats) -> ChannelStats:
        """Combine with the statistics of the images that follow (chunk order for sums)."""
        if self.values.keys() != other.values.keys():
            raise ValueError(
                f"cannot merge statistics {sorted(self.values)} with {sorted(other.values)}"
            )
        out = {}
        for name, mine in self.values.items():
            theirs = other.values[name]
            if name in _MINIMA:
                out[name] = np.minimum(mine, theirs)
            elif name in _MAXIMA:
                out[name] = np.maximum(mine, theirs)
            else:
                out[name] = mine + theirs
        return ChannelStats(out)

    def findings(self, dead_tol: float, constant_tol: float, copy_threshold: float) -> dict:
        """Dead, constant and input-like channels and the sparsity, as
        :class:`vizkit.methods.diagnose.LayerReport` fields (all but ``path`` and ``shape``)."""
        a = self.values
        dead = a["absmax"] <= dead_tol
        constant = ~dead & (a["max"] - a["min"] <= constant_tol)
        corr = self.correlation()
        copies = np.flatnonzero(~dead & ~constant & (np.abs(corr) > copy_threshold))
        const_idx = np.flatnonzero(constant)
        return {
            "channels": len(dead),
            "dead": tuple(int(i) for i in np.flatnonzero(dead)),
            "constant": tuple(int(i) for i in const_idx),
            "constant_values": tuple(float((a["max"][i] + a["min"][i]) / 2) for i in const_idx),
            "input_like": tuple(int(i) for i in copies),
            "input_correlation": tuple(round(float(corr[i]), 6) for i in copies),
            "sparsity": float(a["zeros"].sum() / (a["count"] * len(dead))),
        }

    def correlation(self) -> np.ndarray:
        """Pearson correlation of each channel with the input luminance (0 where undefined)."""
        a = self.values
        if "sxy" not in a:
            return np.zeros_like(a["max"])
        n = a["n_pix"]
        cov = n * a["sxy"] - a["sx"] * a["sy"]
        var_x = np.maximum(n * a["sxx"] - a["sx"] ** 2, 0.0)
        var_y = max(n * a["syy"] - a["sy"] ** 2, 0.0)
        denom = np.sqrt(var_x * var_y)
        # A flat channel (or a flat input) has no defined correlation: report none.
        ok = denom > 1e-12 * max(n * n, 1.0)
        return np.where(ok, cov / np.where(ok, denom, 1.0), 0.0)


def merge_layers(
    acc: dict[str, ChannelStats] | None, part: dict[str, ChannelStats]
) -> dict[str, ChannelStats]:
    """``{layer: stats}`` of ``acc`` merged with the next chunk's ``part``."""
    if acc is None:
        return dict(part)
    return {path: acc[path].merge(stats) for path, stats in part.items()}
