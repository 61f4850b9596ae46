"""Attention of vision transformers drawn over the image: one panel per head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..core.checks import positive_int
from .grids import TILE_INCHES
from .overlays import plot_heatmap


def plot_attention(
    maps,
    image=None,
    *,
    image_index: int = 0,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    alpha: float = 0.6,
    cmap: str = "inferno",
    mean: bool = True,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw per-head attention maps of one image, each over the image.

    Parameters
    ----------
    maps : array_like
        ``(heads, h, w)`` for one image or ``(N, heads, h, w)`` from
        :func:`vizkit.attention_maps` (image ``image_index`` is drawn); a coarse ``h x w`` grid
        is stretched over the image.
    image : array_like, optional
        ``(H, W[, C])`` drawn under each map.
    image_index : int
        Which image of an ``(N, heads, h, w)`` batch.
    titles : sequence of str, optional
        One per head (default ``"head i"``).
    ncols : int, optional
        Panels per row (default about the square root of the panel count).
    alpha, cmap : float, str
        Blending and colour map of the maps (as :func:`plot_heatmap`).
    mean : bool
        Add a last panel with the mean over the heads.
    title : str, optional
        Figure title.
    fig : Figure, optional
        An empty figure to draw on.

    Returns
    -------
    Figure
    """
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim == 4:
        if not -len(arr) <= image_index < len(arr):
            raise ValueError(f"image_index {image_index} is out of range for {len(arr)} images")
        arr = arr[image_index]
    if arr.ndim != 3:
        raise ValueError(f"maps must have shape (heads, h, w) or (N, heads, h, w), got {arr.shape}")
    names = list(titles) if titles is not None else [f"head {i}" for i in range(len(arr))]
    if len(names) != len(arr):
        raise ValueError(f"titles has {len(names)} entries for {len(arr)} heads")
    panels = list(arr)
    if mean and len(arr) > 1:
        panels.append(arr.mean(axis=0))
        names.append("mean of heads")
    if ncols is None:
        ncols = max(1, math.ceil(math.sqrt(len(panels))))
    ncols = min(positive_int(ncols, "ncols"), len(panels))
    nrows = math.ceil(len(panels) / ncols)
    if fig is None:
        fig = Figure(
            figsize=(
                min(TILE_INCHES * 1.4 * ncols, 24.0),
                min(TILE_INCHES * 1.4 * nrows + 0.4, 24.0),
            ),
            layout="constrained",
        )
    grid = fig.add_gridspec(nrows, ncols)
    for i, (panel, name) in enumerate(zip(panels, names, strict=True)):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        plot_heatmap(panel, image, ax=ax, alpha=alpha, cmap=cmap, colorbar=False, title=name)
        ax.title.set_fontsize(8)
    if title:
        fig.suptitle(title)
    return fig
