"""Report renderers in matplotlib: ``render(kind, result, image, *, title) -> Figure``.

Each renderer kind of :data:`vizkit.registry.RENDERERS` maps to one :mod:`vizkit.plot`
function; methods name their kind in the method table, so a new method whose result is a heat
map or a grid needs no renderer of its own.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from .grids import plot_feature_maps, plot_filters, plot_grid
from .overlays import plot_heatmap, plot_hypercolumn


def render(kind: str, result, image=None, *, title: str) -> Figure:
    """Draw ``result`` as a renderer ``kind`` figure (``image``: the input, for per-image ones)."""
    return as_figure(_RENDERERS[kind](result, image, title))


def to_bytes(fig: Figure, fmt: str, dpi: int) -> bytes:
    """``fig`` encoded as ``fmt`` (png, pdf or svg), cropped to its content."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def as_figure(drawn) -> Figure:
    """The Figure behind what a ``plot_*`` function returned (Figure, Axes or array of Axes)."""
    if hasattr(drawn, "savefig"):
        return drawn
    if hasattr(drawn, "figure"):
        return drawn.figure
    return np.ravel(drawn)[0].figure


def _top(result, image, title):
    images, rows = result["images"], result["rows"]
    units = result.get("units", range(len(rows)))
    tiles, titles = [], []
    for unit, (indices, scores) in zip(units, rows, strict=True):
        for i, score in zip(indices, scores, strict=True):
            tiles.append(images[int(i)])
            titles.append(f"u{unit} #{int(i)} {float(score):.3g}")
    ncols = max(len(indices) for indices, _ in rows)
    return plot_grid(np.stack(tiles), titles=titles, ncols=ncols, cmap="gray", title=title)


def _grid(result, image, title):
    titles = [f"unit {u}" for u in result["units"]]
    return plot_grid(result["images"], titles=titles, cmap="gray", title=title)


_RENDERERS = {
    "filters": lambda result, image, title: plot_filters(result, title=title),
    "feature_maps": lambda result, image, title: plot_feature_maps(result, title=title),
    "heatmap": lambda result, image, title: plot_heatmap(result, image, title=title),
    "hypercolumn": lambda result, image, title: plot_hypercolumn(result, image, title=title),
    "grid": _grid,
    "pair": lambda result, image, title: plot_grid(
        [image, result], titles=["input", "dream"], ncols=2, cmap="gray", title=title
    ),
    "top": _top,
}
