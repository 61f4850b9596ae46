"""Figures of the report card (:func:`vizkit.evaluate`): perturbation curves and the
randomisation sanity check.

The functions read a :class:`vizkit.metrics.TrustTable` (or plain mappings of arrays) and never
import the metrics themselves, so drawing needs no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .grids import TILE_INCHES

CURVE_TITLES = {
    "deletion": "deletion (lower area is better)",
    "insertion": "insertion (higher area is better)",
}


def plot_curves(
    table,
    *,
    metrics: Sequence[str] = ("deletion", "insertion"),
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Deletion / insertion curves: the mean target score per step, one line per method.

    Parameters
    ----------
    table : TrustTable or mapping
        A :class:`vizkit.metrics.TrustTable` (its ``curves`` and, dashed in gray, its random
        reference ``reference_curves``) or a mapping ``method -> {metric: (N, steps + 1)}``.
    metrics : sequence of str
        Curves to draw, one panel each; those not in ``table`` are skipped.
    title : str, optional
        Figure title.
    fig : Figure, optional
        An empty figure to draw on.

    Returns
    -------
    Figure
        The legend gives each method's area under the mean curve.
    """
    curves = getattr(table, "curves", table)
    reference = getattr(table, "reference_curves", {})
    if not isinstance(curves, Mapping):
        raise TypeError(f"table must be a TrustTable or a mapping, got {type(table).__name__}")
    present = [k for k in metrics if any(k in c for c in curves.values())]
    if not present:
        raise ValueError(f"no {list(metrics)} curves to draw; the table has {_kinds(curves)}")
    fig = fig if fig is not None else Figure(figsize=(4.5 * len(present), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(present), squeeze=False)[0])
    for ax, metric in zip(axes, present, strict=True):
        for method, per_metric in curves.items():
            if metric in per_metric:
                _line(ax, np.asarray(per_metric[metric], np.float64), method, "-")
        if metric in reference:
            _line(ax, np.asarray(reference[metric], np.float64), "random order", "--", "gray")
        ax.set_xlabel("fraction of pixels " + ("removed" if metric == "deletion" else "shown"))
        ax.set_ylabel("target score")
        ax.set_title(CURVE_TITLES.get(metric, metric), fontsize=10)
        ax.set_xlim(0, 1)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_randomization(
    strip: Mapping[str, tuple[Sequence[str], np.ndarray]],
    image=None,
    *,
    cmap: str = "gray",
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """The cascading randomisation strip (Adebayo et al., 2018, figure 2): for each method, the
    map of the trained model, then the maps as layers are randomised from the top.

    Parameters
    ----------
    strip : mapping
        ``method -> (labels, maps)``: ``L + 1`` column labels (``"original"`` then the layer
        randomised at each step) and ``(L + 1, H, W)`` maps, as
        :meth:`vizkit.metrics.TrustTable.strip` returns.
    image : array_like, optional
        ``(H, W[, C])``: drawn in a first column.
    cmap : str
        Colour map of the absolute maps; each tile uses its own range.
    title : str, optional
        Figure title.
    fig : Figure, optional
        An empty figure to draw on.

    Returns
    -------
    Figure
    """
    if not isinstance(strip, Mapping) or not strip:
        raise ValueError("strip must be a non-empty mapping method -> (labels, maps)")
    rows = []
    for method, (labels, maps) in strip.items():
        maps = np.asarray(maps, np.float64)
        if maps.ndim != 3 or len(labels) != len(maps):
            raise ValueError(
                f"strip[{method!r}] must be (labels, (L + 1, H, W) maps) with one label per map; "
                f"got {len(labels)} labels and maps of shape {maps.shape}"
            )
        rows.append((method, list(labels), np.abs(np.nan_to_num(maps))))
    ncols = max(len(r[1]) for r in rows) + (image is not None)
    fig = (
        fig
        if fig is not None
        else Figure(
            figsize=(min(1.3 * ncols + 0.8, 30.0), min(TILE_INCHES * len(rows) + 0.8, 30.0)),
            layout="constrained",
        )
    )
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (method, labels, maps) in enumerate(rows):
        cells = list(axes[r])
        if image is not None:
            ax = cells.pop(0)
            img = np.asarray(image, np.float32)
            img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else np.clip(img, 0, 1)
            ax.imshow(img, cmap="gray", interpolation="nearest")
            if r == 0:
                ax.set_title("image", fontsize=7)
        for c, ax in enumerate(cells):
            if c < len(maps):
                ax.imshow(maps[c], cmap=cmap, interpolation="nearest")
                if r == 0:
                    ax.set_title(labels[c] if c == 0 else f"+ {labels[c]}", fontsize=7, rotation=30)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r][0].set_ylabel(method, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_layer_similarity(
    results,
    *,
    measure: str = "spearman",
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Similarity to the original map after each randomisation step, mean and standard
    deviation over images, one line per method (Adebayo et al., 2018, figure 3).

    Parameters
    ----------
    results : mapping
        ``method -> RandomizationResult`` (anything with ``layers`` and
        ``similarity[measure]`` of shape ``(L, N)``), e.g. ``TrustTable.randomization``.
    measure : str
        Which similarity to draw.

    Returns
    -------
    Figure
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping method -> RandomizationResult")
    fig = fig if fig is not None else Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    labels: list[str] = []
    for method, result in results.items():
        if measure not in result.similarity:
            raise ValueError(
                f"results[{method!r}] has no {measure!r} similarity; it has "
                f"{sorted(result.similarity)}"
            )
        values = np.asarray(result.similarity[measure], np.float64)
        mean, std = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
        steps = np.arange(len(mean) + 1)
        mean, std = np.concatenate([[1.0], mean]), np.concatenate([[0.0], std])
        ax.plot(steps, mean, "o-", label=method, markersize=3)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
        labels = labels if len(labels) > len(result.layers) else ["original", *result.layers]
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.axhline(0.0, color="gray", linewidth=0.5)
    ax.set_ylabel(f"similarity ({measure})")
    ax.set_xlabel("randomised from the top down to")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _line(ax, curves: np.ndarray, label: str, style: str, color=None) -> None:
    if curves.ndim == 1:
        curves = curves[None]
    mean = curves.mean(axis=0)
    x = np.linspace(0.0, 1.0, len(mean))
    area = float(((mean[:-1] + mean[1:]) / 2).mean()) if len(mean) > 1 else float(mean[0])
    ax.plot(x, mean, style, color=color, label=f"{label} ({area:.3f})", linewidth=1.2)


def _kinds(curves: Mapping) -> list[str]:
    return sorted({k for c in curves.values() for k in c})
