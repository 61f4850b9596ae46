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
* :class:`Histogram` counts each channel's activations in bins whose width is a power of two
  and whose edges are multiples of it, chosen from the values' range. Two histograms merge by
  coarsening the finer one (pairs of bins add up exactly), so the counts are those of a single
  pass over the data with the final edges, in any order.

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


def merge_layers(acc: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """``{layer: summary}`` of ``acc`` merged with the next chunk's ``part``, layer by layer
    (each summary, e.g. a :class:`TopK` or :class:`ChannelStats`, has a ``merge`` method)."""
    if acc is None:
        return dict(part)
    return {path: acc[path].merge(summary) for path, summary in part.items()}


HIST_BINS = 32  # bins per channel histogram (a power of two, see Histogram)
HIST_MIN_EXP = -40  # narrowest bin width 2**-40: a constant channel still gets one bin
HIST_SPAN_EXP = 30  # bins are at least 2**-30 of the largest |value|: indices stay small ints


@dataclass(frozen=True)
class Histogram:
    """Per-channel histograms of a layer's activations on power-of-two bins.

    Bin ``j`` of channel ``c`` covers ``[j * w_c, (j + 1) * w_c)`` with ``w_c = 2 **
    exponent[c]``; the histogram holds the bins ``start[c] .. start[c] + bins - 1``. The width
    is the smallest that fits the channel's range ``[low, high]`` into ``bins`` bins, at least
    ``2 ** HIST_MIN_EXP`` and at least ``2 ** -HIST_SPAN_EXP`` times the largest absolute value
    (so that bin indices stay small integers). The rule depends only on ``low`` and ``high``, and
    dividing by a power of two is exact, so a value's bin never depends on which chunk it came
    in: the merged counts equal ``np.histogram(values, edges()[c])`` of all values at once.
    Non-finite values are left out (``count`` says how many values were counted).

    Attributes
    ----------
    exponent : ndarray, int64, shape (C,)
    start : ndarray, int64, shape (C,)
    counts : ndarray, int64, shape (C, bins)
    low, high : ndarray, float64, shape (C,)
        Smallest and largest finite value (``inf`` and ``-inf`` while there is none).
    """

    exponent: np.ndarray
    start: np.ndarray
    counts: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def bins(self) -> int:
        return int(self.counts.shape[1])

    @property
    def count(self) -> np.ndarray:
        """Values counted per channel, int64 ``(C,)``."""
        return self.counts.sum(axis=1)

    @classmethod
    def of_batch(cls, batch: dict[str, np.ndarray]) -> Histogram:
        """The histogram of one batch as computed in the graph (``exponent``, ``start``,
        ``counts``, ``low``, ``high``)."""
        return cls(
            np.asarray(batch["exponent"], np.int64),
            np.asarray(batch["start"], np.int64),
            np.asarray(batch["counts"], np.int64),
            np.asarray(batch["low"], np.float64),
            np.asarray(batch["high"], np.float64),
        )

    @classmethod
    def of_values(cls, values: np.ndarray, bins: int = HIST_BINS) -> Histogram:
        """The histogram of ``values`` ``(n, C)`` in NumPy (the reference the graph follows)."""
        x = np.asarray(values, np.float64).reshape(-1, np.shape(values)[-1])
        finite = np.isfinite(x)
        low = np.where(finite, x, np.inf).min(axis=0, initial=np.inf)
        high = np.where(finite, x, -np.inf).max(axis=0, initial=-np.inf)
        exponent = hist_exponent(low, high, bins, hist_floor(low, high))
        width = np.ldexp(1.0, exponent.astype(np.int32))
        start = hist_start(low, high, width)
        counts = np.zeros((x.shape[1], bins), np.int64)
        for c in range(x.shape[1]):
            index = np.floor(x[finite[:, c], c] / width[c]).astype(np.int64) - start[c]
            counts[c] = np.bincount(index, minlength=bins)
        return cls(exponent, start, counts, low, high)

    def merge(self, other: Histogram) -> Histogram:
        """The histogram of the values of both (any order gives the same result)."""
        if self.counts.shape != other.counts.shape:
            raise ValueError(
                f"cannot merge histograms of shapes {self.counts.shape} and {other.counts.shape}"
            )
        low, high = np.minimum(self.low, other.low), np.maximum(self.high, other.high)
        exponent = hist_exponent(low, high, self.bins, np.maximum(self.exponent, other.exponent))
        start = hist_start(low, high, np.ldexp(1.0, exponent.astype(np.int32)))
        counts = np.zeros_like(self.counts)
        channels = np.arange(len(counts))[:, None]
        for part in (self, other):
            # Bin j at width 2**e lies inside bin j >> d at width 2**(e + d): exact coarsening.
            shift = (exponent - part.exponent)[:, None]
            index = ((part.start[:, None] + np.arange(self.bins)) >> shift) - start[:, None]
            held = part.counts > 0
            np.add.at(counts, (np.broadcast_to(channels, index.shape)[held], index[held]),
                      part.counts[held])  # fmt: skip
        return Histogram(exponent, start, counts, low, high)

    def edges(self) -> np.ndarray:
        """Bin edges per channel, float64 ``(C, bins + 1)`` (exact: small integers times a
        power of two)."""
        j = self.start[:, None] + np.arange(self.bins + 1)
        return np.ldexp(j.astype(np.float64), self.exponent[:, None].astype(np.int32))

    def used(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` of ``channel`` from its first bin to the one holding its largest
        value (the bins past it are empty by construction)."""
        counts = self.counts[channel]
        nonzero = np.flatnonzero(counts)
        last = int(nonzero[-1]) + 1 if len(nonzero) else 1
        return counts[:last], self.edges()[channel, : last + 1]


def floor_log2(values: np.ndarray) -> np.ndarray:
    """``floor(log2(v))`` of positive float64 values, exactly (from the binary exponent)."""
    return np.frexp(np.asarray(values, np.float64))[1].astype(np.int64) - 1


def hist_floor(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The smallest allowed bin exponent per channel (see :class:`Histogram`)."""
    absmax = np.where(high >= low, np.maximum(np.abs(low), np.abs(high)), 0.0)
    scaled = floor_log2(np.where(absmax > 0, absmax, 1.0)) - HIST_SPAN_EXP
    return np.maximum(np.where(absmax > 0, scaled, HIST_MIN_EXP), HIST_MIN_EXP)


def hist_fits(low, high, exponent, bins: int) -> np.ndarray:
    """Whether ``[low, high]`` spans fewer than ``bins`` bins of width ``2 ** exponent``."""
    width = np.ldexp(1.0, np.asarray(exponent).astype(np.int32))
    empty = ~(high >= low)
    span = np.floor(np.where(empty, 0.0, high) / width) - np.floor(
        np.where(empty, 0.0, low) / width
    )
    return empty | (span < bins)


def hist_exponent(low, high, bins: int, minimum) -> np.ndarray:
    """The smallest exponent ``>= minimum`` whose bins fit ``[low, high]`` (per channel)."""
    exponent = np.asarray(minimum, np.int64).copy()
    spread = np.where(high > low, high - low, 0.0)
    # A width below spread / bins cannot fit: start just under it, then step up (<= 4 steps).
    guess = floor_log2(np.where(spread > 0, spread, 1.0)) - int(np.log2(bins)) - 1
    exponent = np.where(spread > 0, np.maximum(exponent, guess), exponent)
    while True:
        short = ~hist_fits(low, high, exponent, bins)
        if not short.any():
            return exponent
        exponent = exponent + short


def hist_start(low, high, width) -> np.ndarray:
    """Index of each channel's first bin (0 for a channel without values)."""
    return np.where(high >= low, np.floor(np.where(high >= low, low, 0.0) / width), 0).astype(
        np.int64
    )
